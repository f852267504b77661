"""Where results live, and the registry of every artifact the notebooks must produce.

``python -m paper_lib.paths --check --scale S`` exits non-zero and lists what is missing or stale under
``results/S``. Stale is decided by content, not by file times (a fresh clone gives every file the same time): each
successful notebook execution leaves a record, ``results/S/.executions/<notebook>.json``, holding the sha256 of the
notebook, of what it read (the runs' manifests; for the report, the other notebooks' records) and of every artifact
it wrote. An artifact is stale when its notebook has no record (it never completed since it started again), when the
notebook or its inputs changed since, or when the file is not the one that execution wrote.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

from paper_lib.rundir import sha256_file

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
    "written_at",
    "missing_artifacts",
    "record_execution",
    "forget_execution",
    "stale_artifacts",
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
    "table_overlap_growth": ("03_process_sets", "tables/table_overlap_growth.csv"),
    "table_smollm2_overlap": ("03_process_sets", "tables/table_smollm2_overlap.csv"),
    "table_design_pilots": ("04_training", "tables/table_design_pilots.csv"),
    "table_design_power": ("04_training", "tables/table_design_power.csv"),
    "fig_validation_curves": ("04_training", "figures/fig_validation_curves.pdf"),
    "table_peaks": ("04_training", "tables/table_peaks.csv"),
    "table2_downstream": ("05_downstream", "tables/table2_downstream.csv"),
    "table3_differences": ("05_downstream", "tables/table3_differences.csv"),
    "table_overhead": ("06_overhead", "tables/table_overhead.csv"),
    "fig_step_breakdown": ("06_overhead", "figures/fig_step_breakdown.pdf"),
    "table_power": ("07_report", "tables/table_power.csv"),
    "report": ("07_report", "REPORT.md"),
}
# artifacts that only some scales write: the sums design pilots are a small-scale (and smoke) experiment; the paper
# scale trains the paper's 8 runs with no design section
_ONLY_AT: dict[str, tuple[str, ...]] = {"table_design_pilots": ("smoke", "small"),
                                        "table_design_power": ("smoke", "small")}  # fmt: skip
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


def written_at(key: str, scale: str) -> bool:
    """Whether the notebook of ``key`` writes it at ``scale`` (all but the entries of ``_ONLY_AT`` write at all)."""
    return scale in _ONLY_AT.get(key, SCALES)


def expected_artifacts(notebooks_dir: Path | None = None, scale: str | None = None) -> list[str]:
    """Keys of the artifacts whose notebook exists (a notebook not yet written has nothing to check), and that are
    written at ``scale`` when one is given."""
    present = {p.stem for p in (notebooks_dir or REPO_ROOT / "notebooks").glob("*.ipynb")}
    return [key for key in ARTIFACTS if NOTEBOOK_OF[key] in present and (scale is None or written_at(key, scale))]


def missing_artifacts(scale: str, root: Path | str | None = None, notebooks_dir: Path | None = None) -> list[Path]:
    files = (f for key in expected_artifacts(notebooks_dir, scale) for f in artifact_files(key, scale, root))
    return [f for f in files if not f.is_file() or not f.stat().st_size]


# -- records of notebook executions, so that --check knows a stale artifact from a fresh one ------------------------
RUN_READERS = ("02_toy_tree_task", "03_process_sets", "04_training", "05_downstream")  # the Makefile's RUN_READERS
REPORT = "07_report"  # reads the other notebooks' artifacts


def _record_path(notebook: str, root: Path) -> Path:
    return root / ".executions" / f"{notebook}.json"


def _inputs_sha256(notebook: str, root: Path) -> str:
    """One digest of what ``notebook`` reads: the run manifests (and benchmark summaries) for the notebooks that
    read runs, the other notebooks' records for the report, nothing for the rest."""
    files = []
    if notebook in RUN_READERS:
        files = sorted(p for p in (root / "runs").rglob("*.json") if p.name in ("manifest.json", "summary.json"))
    elif notebook == REPORT:
        files = sorted(p for p in (root / ".executions").glob("*.json") if p.stem != REPORT)
    digest = hashlib.sha256()
    for f in files:
        digest.update(f"{f.relative_to(root).as_posix()} {sha256_file(f)}\n".encode())
    return digest.hexdigest()


def _artifacts_of(notebook: str, scale: str, root: Path) -> list[Path]:
    keys = (key for key in ARTIFACTS if NOTEBOOK_OF[key] == notebook and written_at(key, scale))
    return [f for key in keys for f in artifact_files(key, scale, root)]


def record_execution(notebook: str, scale: str, root: Path | str | None = None,
                     notebooks_dir: Path | None = None) -> Path:  # fmt: skip
    """Write the record of a successful execution of ``notebook`` (after every cell ran): the sha256 of the
    notebook, of its inputs and of each artifact it wrote. Raises if one of its artifacts is missing."""
    root, source = results_dir(scale, root), (notebooks_dir or REPO_ROOT / "notebooks") / f"{notebook}.ipynb"
    if not source.is_file():
        raise FileNotFoundError(f"no notebook {source}")
    files = _artifacts_of(notebook, scale, root)
    absent = [str(f) for f in files if not f.is_file()]
    if absent:
        raise FileNotFoundError(f"{notebook} finished without writing {absent}")
    record = {"notebook": notebook, "notebook_sha256": sha256_file(source),
              "inputs_sha256": _inputs_sha256(notebook, root),
              "artifacts": {f.relative_to(root).as_posix(): sha256_file(f) for f in files}}  # fmt: skip
    path = _record_path(notebook, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    return path


def forget_execution(notebook: str, scale: str, root: Path | str | None = None) -> None:
    """Drop the record before ``notebook`` runs again: until it completes, its artifacts count as stale."""
    _record_path(notebook, results_dir(scale, root)).unlink(missing_ok=True)


def stale_artifacts(scale: str, root: Path | str | None = None,
                    notebooks_dir: Path | None = None) -> list[tuple[Path, str]]:  # fmt: skip
    """(file, why) for every present artifact that its notebook's last completed execution does not vouch for."""
    root, nb_dir = results_dir(scale, root), notebooks_dir or REPO_ROOT / "notebooks"
    stale = []
    for notebook in dict.fromkeys(NOTEBOOK_OF[key] for key in expected_artifacts(nb_dir, scale)):
        present = [f for f in _artifacts_of(notebook, scale, root) if f.is_file()]
        why = _why_stale(notebook, root, nb_dir)
        if why:
            stale += [(f, why) for f in present]
            continue
        written = json.loads(_record_path(notebook, root).read_text())["artifacts"]
        stale += [(f, f"not the file {notebook} wrote") for f in present
                  if written.get(f.relative_to(root).as_posix()) != sha256_file(f)]  # fmt: skip
    return stale


def _why_stale(notebook: str, root: Path, nb_dir: Path) -> str | None:
    path = _record_path(notebook, root)
    if not path.is_file():
        return f"{notebook} has not completed since it last started (no {path.relative_to(root)})"
    record = json.loads(path.read_text())
    if record["notebook_sha256"] != sha256_file(nb_dir / f"{notebook}.ipynb"):
        return f"{notebook}.ipynb changed since it wrote this"
    if record["inputs_sha256"] != _inputs_sha256(notebook, root):
        return f"what {notebook} reads changed since it wrote this"
    return None


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
               markdown: str | None = None, significant: int | None = None) -> list[Path]:  # fmt: skip
    """Save a registered table as CSV (full precision, or ``significant`` digits: a table computed on the fly, whose
    last digits depend on the CPU) and Markdown (``float_format``; ``markdown``: the sidecar's text instead, for a
    table whose Markdown form is richer than its CSV)."""
    csv, md = artifact_files(key, scale, root)
    csv.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(csv, index=False, float_format=f"%.{significant}g" if significant else None)
    md.write_text(markdown_table(df, float_format) if markdown is None else markdown)
    return [csv, md]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if any registered artifact is missing or stale")
    parser.add_argument("--scale", default="small", choices=SCALES)
    parser.add_argument("--root", default=None, help="results folder (default results/<scale>)")
    parser.add_argument("--notebooks-dir", type=Path, default=None, help="default: notebooks/")
    parser.add_argument("--forget", metavar="NOTEBOOK", help="drop NOTEBOOK's record (it is about to run again)")
    parser.add_argument("--record", metavar="NOTEBOOK", help="record a successful execution of NOTEBOOK")
    args = parser.parse_args(argv)
    if args.forget or args.record:
        if args.forget:
            forget_execution(args.forget, args.scale, args.root)
        else:
            record_execution(args.record, args.scale, args.root, args.notebooks_dir)
        return 0
    if not args.check:
        for key in ARTIFACTS:
            print(f"{key:24s} {artifact_path(key, args.scale, args.root)}")
        return 0
    missing = missing_artifacts(args.scale, args.root, args.notebooks_dir)
    stale = stale_artifacts(args.scale, args.root, args.notebooks_dir)
    for f in missing:
        print(f"missing: {f}", file=sys.stderr)
    for f, why in stale:
        print(f"stale: {f}: {why}", file=sys.stderr)
    print(f"{len(expected_artifacts(args.notebooks_dir, args.scale))} artifacts expected at scale {args.scale}: "
          f"{len(missing)} files missing, {len(stale)} stale")  # fmt: skip
    return 1 if missing or stale else 0


if __name__ == "__main__":
    from paper_lib.cli import run_main

    sys.exit(run_main(main))
