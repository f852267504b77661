"""Where results live, and the registry of every artifact the notebooks must produce.

``python -m paper_lib.paths --check --scale S`` exits non-zero and lists what is missing under ``results/S``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["REPO_ROOT", "SCALES", "ARTIFACTS", "results_dir", "artifact_path", "artifact_files", "missing_artifacts"]

REPO_ROOT = Path(__file__).resolve().parents[1]
SCALES = ("smoke", "small", "paper")

# key -> path relative to results/<scale>/. A figure (.pdf) also has a .png; a table (.csv) also has a .md.
ARTIFACTS: dict[str, str] = {
    "fig1_process_tree": "figures/fig1_process_tree.pdf",
    "fig_example_prm": "figures/fig_example_prm.pdf",
    "table_theorem": "tables/table_theorem.csv",
}
_COMPANIONS = {".pdf": (".png",), ".csv": (".md",)}


def _check_scale(scale: str) -> None:
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")


def results_dir(scale: str, root: Path | str | None = None) -> Path:
    """``results/<scale>`` (or ``root`` when given, e.g. the notebook's ``results_dir`` parameter)."""
    _check_scale(scale)
    return Path(root) if root else REPO_ROOT / "results" / scale


def artifact_path(key: str, scale: str = "small", root: Path | str | None = None) -> Path:
    """The primary file of a registered artifact."""
    if key not in ARTIFACTS:
        raise KeyError(f"unknown artifact {key!r}; registered: {sorted(ARTIFACTS)}")
    return results_dir(scale, root) / ARTIFACTS[key]


def artifact_files(key: str, scale: str = "small", root: Path | str | None = None) -> list[Path]:
    """Every file of an artifact: the primary and its companions (.png of a .pdf, .md of a .csv)."""
    primary = artifact_path(key, scale, root)
    return [primary] + [primary.with_suffix(s) for s in _COMPANIONS.get(primary.suffix, ())]


def missing_artifacts(scale: str, root: Path | str | None = None) -> list[Path]:
    return [
        f for key in ARTIFACTS for f in artifact_files(key, scale, root) if not f.is_file() or not f.stat().st_size
    ]


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
    print(f"{len(ARTIFACTS)} artifacts registered, {len(missing)} files missing at scale {args.scale}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
