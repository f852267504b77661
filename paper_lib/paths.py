"""Where results live, and the registry of every artifact the notebooks must produce.

``python -m paper_lib.paths --check --scale S`` exits non-zero and lists what is missing under ``results/S``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

__all__ = [
    "REPO_ROOT",
    "work_root",
    "SCALES",
    "ARTIFACTS",
    "NOTEBOOK_OF",
    "results_dir",
    "artifact_path",
    "artifact_files",
    "expected_artifacts",
    "missing_artifacts",
    "check_scale",
    "check_run_name",
    "save_figure",
    "save_table",
    "markdown_table",
]

REPO_ROOT = Path(__file__).resolve().parents[1]


def work_root() -> Path:
    """Where ``results/`` and ``.cache/`` live: ``$PAPER_LIB_ROOT`` if set, else this checkout (the repository the
    package sits in), else the working directory (an installed package must not write into site-packages)."""
    if os.environ.get("PAPER_LIB_ROOT"):
        return Path(os.environ["PAPER_LIB_ROOT"])
    return REPO_ROOT if (REPO_ROOT / "pyproject.toml").is_file() else Path.cwd()


def check_run_name(name) -> str:
    """``name`` if it is a plain folder name (one path component, not ``.``/``..``, no separator), else ValueError:
    a run directory is ``root / name`` and must stay inside ``root``."""
    if not isinstance(name, str) or not name.strip() or name in (".", "..") or "/" in name or "\\" in name:
        raise ValueError(f"name must be a plain folder name (no '/', not '.' or '..', not empty), got {name!r}")
    if name != name.strip() or name.startswith("."):
        raise ValueError(f"name must not start with '.' or have surrounding spaces, got {name!r}")
    return name


SCALES = ("smoke", "small", "paper")

# key -> (notebook that writes it, path relative to results/<scale>/). A figure (.pdf) also has a .png; a table
# (.csv) also has a .md. `--check` covers the artifacts of every notebook present in notebooks/.
_REGISTRY: dict[str, tuple[str, str]] = {
    "fig1_process_tree": ("01_theorem", "figures/fig1_process_tree.pdf"),
    "fig_example_prm": ("01_theorem", "figures/fig_example_prm.pdf"),
    "table_theorem": ("01_theorem", "tables/table_theorem.csv"),
    "table1_toy": ("02_toy_tree_task", "tables/table1_toy.csv"),
    "fig_target_freq": ("02_toy_tree_task", "figures/fig_target_freq.pdf"),
    "fig_target_freq_all": ("02_toy_tree_task", "figures/fig_target_freq_all.pdf"),
    "table_toy_rates": ("02_toy_tree_task", "tables/table_toy_rates.csv"),
    "table_toy_seeds": ("02_toy_tree_task", "tables/table_toy_seeds.csv"),
    "table_toy_ablation": ("02_toy_tree_task", "tables/table_toy_ablation.csv"),
    "fig_toy_sweep": ("02_toy_tree_task", "figures/fig_toy_sweep.pdf"),
    "table_flat_trees": ("03_process_sets", "tables/table_flat_trees.csv"),
    "fig_process_stats": ("03_process_sets", "figures/fig_process_stats.pdf"),
    "fig_bg_early_late": ("03_process_sets", "figures/fig_bg_early_late.pdf"),
    "table_smollm2_overlap": ("03_process_sets", "tables/table_smollm2_overlap.csv"),
    "fig_validation_curves": ("04_training", "figures/fig_validation_curves.pdf"),
    "table_peaks": ("04_training", "tables/table_peaks.csv"),
    "table2_downstream": ("05_downstream", "tables/table2_downstream.csv"),
    "table3_differences": ("05_downstream", "tables/table3_differences.csv"),
    "table_overhead": ("06_overhead", "tables/table_overhead.csv"),
    "fig_step_breakdown": ("06_overhead", "figures/fig_step_breakdown.pdf"),
    "report": ("07_report", "REPORT.md"),
}
ARTIFACTS: dict[str, str] = {key: path for key, (_, path) in _REGISTRY.items()}
NOTEBOOK_OF: dict[str, str] = {key: nb for key, (nb, _) in _REGISTRY.items()}
_COMPANIONS = {".pdf": (".png",), ".csv": (".md",)}


def check_scale(scale: str) -> str:
    """``scale`` if it is one of :data:`SCALES`, else ValueError naming the choices."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    return scale


def results_dir(scale: str, root: Path | str | None = None) -> Path:
    """``results/<scale>`` (or ``root`` when given, e.g. the notebook's ``results_dir`` parameter)."""
    check_scale(scale)
    return Path(root) if root else work_root() / "results" / scale


def artifact_path(key: str, scale: str = "small", root: Path | str | None = None) -> Path:
    """The primary file of a registered artifact."""
    if key not in ARTIFACTS:
        raise KeyError(f"unknown artifact {key!r}; registered: {sorted(ARTIFACTS)}")
    return results_dir(scale, root) / ARTIFACTS[key]


def artifact_files(key: str, scale: str = "small", root: Path | str | None = None) -> list[Path]:
    """Every file of an artifact: the primary and its companions (.png of a .pdf, .md of a .csv)."""
    primary = artifact_path(key, scale, root)
    return [primary] + [primary.with_suffix(s) for s in _COMPANIONS.get(primary.suffix, ())]


def expected_artifacts(notebooks_dir: Path | None = None) -> list[str]:
    """Keys of the artifacts whose notebook exists (a notebook not yet written has nothing to check)."""
    present = {p.stem for p in (notebooks_dir or REPO_ROOT / "notebooks").glob("*.ipynb")}
    return [key for key in ARTIFACTS if NOTEBOOK_OF[key] in present]


def missing_artifacts(scale: str, root: Path | str | None = None, notebooks_dir: Path | None = None) -> list[Path]:
    files = (f for key in expected_artifacts(notebooks_dir) for f in artifact_files(key, scale, root))
    return [f for f in files if not f.is_file() or not f.stat().st_size]


# -- writing registered artifacts: figures as PDF + PNG, tables as CSV + Markdown, byte-stable across reruns --
_STABLE_METADATA = {".pdf": {"CreationDate": None, "ModDate": None}, ".png": {"Software": None}}


def save_figure(fig, key: str, scale: str, root: Path | str | None = None, dpi: int = 150) -> list[Path]:
    """Save a registered figure (PDF + PNG) with no timestamps in the files, so reruns give identical bytes."""
    files = artifact_files(key, scale, root)
    for f in files:
        f.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(f, dpi=dpi, bbox_inches="tight", metadata=_STABLE_METADATA[f.suffix])
    return files


def markdown_table(df, float_format: str = "{:.4g}") -> str:
    """A GitHub-flavoured Markdown table of a DataFrame (no extra dependency)."""

    def cell(v) -> str:
        text = float_format.format(v) if isinstance(v, float) else str(v)
        return text.replace("|", "\\|")  # a literal pipe (|λ|) would split the cell

    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def save_table(df, key: str, scale: str, root: Path | str | None = None, float_format: str = "{:.4g}",
               markdown: str | None = None) -> list[Path]:  # fmt: skip
    """Save a registered table as CSV (full precision) and Markdown (``float_format``; ``markdown``: the sidecar's
    text instead, for a table whose Markdown form is richer than its CSV)."""
    csv, md = artifact_files(key, scale, root)
    csv.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(csv, index=False)
    md.write_text(markdown_table(df, float_format) if markdown is None else markdown)
    return [csv, md]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if any registered artifact is missing")
    parser.add_argument("--scale", default="small", choices=SCALES)
    parser.add_argument("--root", default=None, help="results folder (default results/<scale>)")
    args = parser.parse_args(argv)
    if not args.check:
        for key in ARTIFACTS:
            print(f"{key:24s} {artifact_path(key, args.scale, args.root)}")
        return 0
    missing = missing_artifacts(args.scale, args.root)
    for f in missing:
        print(f"missing: {f}", file=sys.stderr)
    print(f"{len(expected_artifacts())} artifacts expected, {len(missing)} files missing at scale {args.scale}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
