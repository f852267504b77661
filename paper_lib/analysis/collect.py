"""Run directories → tidy DataFrames (one row per run and step), with each run's config fields as columns."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from paper_lib.rundir import read_json, read_jsonl

__all__ = ["run_dirs", "metrics_frame", "groups_frame", "toy_frame", "load_downstream", "METHOD_LABELS"]

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


def load_downstream(experiment_dir: Path) -> list[dict]:
    """Every held-out result of an experiment folder, one record per evaluated model: ``run``, ``model``,
    ``method`` (``"base"`` for a starting policy), ``beta``, ``seed`` and ``sets`` (name → accuracy, sem, n, and the
    per-item 0/1 scores ``correct`` where the result file has them, else None).

    Two layouts: the CPU scales' ``base_downstream.json`` + ``<run>/downstream.json``, and the paper scale's
    ``base_<model>/benchmarks/summary.json`` + ``<run>/benchmarks/summary.json`` (:mod:`paper_lib.paper_scale.recipe`).
    """
    experiment_dir = Path(experiment_dir)
    records = []
    for result in sorted(experiment_dir.glob("*/downstream.json")) + sorted(
        experiment_dir.glob("*/benchmarks/summary.json")
    ):
        run_dir = result.parent if result.name == "downstream.json" else result.parent.parent
        if run_dir.name.startswith("base_"):
            cfg = {"model": run_dir.name.removeprefix("base_"), "method": "base", "beta": float("nan"), "seed": 0}
        else:
            cfg = read_json(run_dir / "config.json")
        records.append(_record(run_dir.name, cfg, read_json(result)))
    small_base = experiment_dir / "base_downstream.json"
    if small_base.is_file():  # one warm start per experiment at the CPU scales: the runs' own model
        model = records[0]["model"] if records else "base"
        records.insert(0, _record("base", {"model": model, "method": "base", "beta": float("nan"), "seed": 0},
                                  read_json(small_base)))  # fmt: skip
    return records


def _record(run: str, cfg: dict, result: dict) -> dict:
    sets = {name: {k: r.get(k) for k in ("accuracy", "sem", "n", "correct")} for name, r in result.items()
            if isinstance(r, dict) and "sem" in r}  # fmt: skip
    return {"run": run, "model": cfg["model"], "method": cfg["method"], "beta": cfg["beta"], "seed": cfg["seed"],
            "sets": sets}  # fmt: skip
