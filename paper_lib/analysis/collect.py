"""Run directories → tidy DataFrames (one row per run and step), with each run's config fields as columns."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from paper_lib.rundir import read_json, read_jsonl

__all__ = ["run_dirs", "metrics_frame", "groups_frame", "toy_frame", "METHOD_LABELS"]

METHOD_LABELS = {"grpo": "GRPO", "lambda_grpo": "λ-GRPO", "scaled_grpo": "scale-matched GRPO"}
_CONFIG_COLUMNS = (
    "model",
    "method",
    "seed",
    "beta",
    "group_size",
    "toy_n",
    "toy_r_neg",
    "learning_rate",
    "loss_type",
    "toy_mask",
)


def run_dirs(experiment_dir: Path) -> list[Path]:
    """Finished runs of one experiment, in name order."""
    dirs = sorted(p.parent for p in Path(experiment_dir).glob("*/manifest.json"))
    return [d for d in dirs if read_json(d / "manifest.json").get("status") == "finished"]


def _with_config(df: pd.DataFrame, run_dir: Path) -> pd.DataFrame:
    cfg = read_json(run_dir / "config.json")
    df.insert(0, "run", run_dir.name)
    for key in _CONFIG_COLUMNS:
        df[key] = cfg.get(key)
    df["label"] = METHOD_LABELS[cfg["method"]]
    target = run_dir / "toy_target.json"
    if target.is_file():
        df["p0_target"] = read_json(target)["p0_target"]
    return df


def metrics_frame(experiment_dir: Path, columns: list[str]) -> pd.DataFrame:
    """Rows with any of ``columns`` logged (training metrics and validation rows are separate rows per step)."""
    frames = []
    for d in run_dirs(experiment_dir):
        rows = [r for r in read_jsonl(d / "metrics.jsonl") if any(c in r for c in columns)]
        df = pd.DataFrame(rows).reindex(columns=["step", *columns])
        frames.append(_with_config(df, d))
    if not frames:
        raise FileNotFoundError(f"no finished runs under {experiment_dir}")
    return pd.concat(frames, ignore_index=True)


def groups_frame(experiment_dir: Path) -> pd.DataFrame:
    """Per-group B(G) statistics of every run (``groups.parquet``)."""
    frames = [_with_config(pd.read_parquet(d / "groups.parquet"), d) for d in run_dirs(experiment_dir)]
    return pd.concat(frames, ignore_index=True)



def toy_frame(root: Path, tier: str, experiment: str, learning_rate: float | None = None) -> pd.DataFrame:
    """The toy runs of one experiment (optionally at one learning rate) with their ``tier`` and ``experiment``."""
    df = metrics_frame(Path(root) / experiment, ["target_frequency", "entropy"])
    df = df[df.target_frequency.notna()]
    if learning_rate is not None:
        df = df[df.learning_rate == learning_rate]
    return df.assign(tier=tier, experiment=experiment)
