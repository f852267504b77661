"""How the reasoning stand-in was designed, from GRPO runs only (no λ-GRPO run of the task is read here).

:func:`pilot_table` summarises the design pilots (``runs/design``: one GRPO run per warm-start length);
:func:`pick_warm_start` applies the rule fixed before they ran; :func:`seeds_for_power` is the power analysis that
picks the number of seeds from the spread of GRPO's held-out average over seeds.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.stats as st

from paper_lib.rundir import read_json

__all__ = ["PART_EARLY", "pilot_table", "pick_warm_start", "mde_for_seeds", "seeds_for_power", "warm_start_check"]

PART_EARLY = 0.3  # issue 15: groups part early when the intermediate proportion is < 0.3 at the start of RL
MDE_SHARE = 0.05  # issue 15: the MDE at most 5% of GRPO's held-out score ...
HEADROOM = 3.0  # ... and GRPO's gain over its starting policy at least 3 MDEs
MIN_SEEDS = 10


def _held_out_average(result_file: Path) -> float:
    sets = [v["accuracy"] for v in read_json(result_file).values() if isinstance(v, dict) and "accuracy" in v]
    return float(np.mean(sets))


def pilot_table(design_dir, window: int = 50) -> pd.DataFrame:
    """One row per finished run of ``design_dir``: its warm-start length and seed; the intermediate proportion, path
    depth and training reward over the first and the last ``window`` RL steps (:func:`.tables.overlap_growth`); the
    first and the best greedy validation; and the held-out average (mean accuracy over the test sets) of its warm
    start (``base``) and of its best checkpoint (``grpo``), with ``gain = grpo − base``."""
    from paper_lib.analysis.collect import metrics_frame
    from paper_lib.analysis.tables import GROWTH, overlap_growth
    from paper_lib.experiments.downstream import base_result_file
    from paper_lib.training.config import RunConfig

    metrics = metrics_frame(design_dir, [*GROWTH.values(), "val/accuracy"])
    if set(metrics.method) != {"grpo"}:
        others = ", ".join(sorted(set(metrics.method) - {"grpo"}))
        raise ValueError(f"{design_dir}: the design reads GRPO runs only, not {others}")
    table = overlap_growth(metrics, window).set_index("run")
    for run, val in metrics.dropna(subset=["val/accuracy"]).sort_values("step").groupby("run")["val/accuracy"]:
        run_dir = Path(design_dir) / run
        cfg = RunConfig(**read_json(run_dir / "config.json"))
        base = _held_out_average(base_result_file(run_dir, cfg.warm_start_key()))
        grpo = _held_out_average(run_dir / "downstream.json")
        values = {"warm_start_steps": cfg.warm_start_steps, "first_validation": val.iloc[0],
                  "best_validation": val.max(), "base": base, "grpo": grpo, "gain": grpo - base}  # fmt: skip
        table.loc[run, list(values)] = list(values.values())
    table["warm_start_steps"] = table.warm_start_steps.astype(int)
    order = ["warm_start_steps", "seed", *[c for c in table.columns if c.endswith(("_start", "_end"))],
             "first_validation", "best_validation", "base", "grpo", "gain"]  # fmt: skip
    return table[order].reset_index().sort_values(["warm_start_steps", "seed"], ignore_index=True)


def pick_warm_start(pilots: pd.DataFrame, seed: int) -> int:
    """The rule fixed before the pilots ran: of the pilots on ``seed`` whose groups part early (intermediate
    proportion < :data:`PART_EARLY` over the first RL steps), the warm-start length with the largest held-out gain.
    ValueError if no pilot parts early."""
    eligible = pilots[(pilots.seed == seed) & (pilots.intermediate_start < PART_EARLY)]
    if eligible.empty:
        raise ValueError(f"no pilot on seed {seed} starts with an intermediate proportion below {PART_EARLY}")
    return int(eligible.loc[eligible.gain.idxmax(), "warm_start_steps"])


def mde_for_seeds(sd: float, n: int, power: float = 0.8, alpha: float = 0.05) -> float:
    """The MDE of a paired λ-GRPO − GRPO difference over ``n`` seeds when each method's score has standard deviation
    ``sd`` over seeds and the pair is independent (ρ = 0: the difference has sd √2·``sd``; pairs that share a seed
    correlate positively, so this overstates the MDE), normal approximation as :func:`.stats.mde_paired`."""
    return (st.norm.ppf(1 - alpha / 2) + st.norm.ppf(power)) * math.sqrt(2) * sd / math.sqrt(n)


def seeds_for_power(scores, base: float, max_seeds: int = 40) -> dict:
    """The power analysis: from GRPO's held-out averages over seeds (``scores``) and its starting policy's
    (``base``), the fewest seeds (at least :data:`MIN_SEEDS`) whose MDE is ≤ :data:`MDE_SHARE` of GRPO's score and ≤
    1/:data:`HEADROOM` of its gain. ``seeds`` is None if no count up to ``max_seeds`` meets both."""
    scores = np.asarray(scores, dtype=float)
    if len(scores) < 2:
        raise ValueError(f"the power analysis needs at least 2 GRPO seeds, got {len(scores)}")
    sd, grpo = float(scores.std(ddof=1)), float(scores.mean())
    gain = grpo - base
    need = min(MDE_SHARE * grpo, gain / HEADROOM)
    seeds = next((n for n in range(MIN_SEEDS, max_seeds + 1) if mde_for_seeds(sd, n) <= need), None)
    return {"pilot_seeds": len(scores), "grpo": grpo, "sd": sd, "base": base, "rl_gain": gain, "mde_needed": need,
            "seeds": seeds, "mde": mde_for_seeds(sd, seeds or max_seeds)}  # fmt: skip


def warm_start_check(design_dir, runs_dir) -> dict | None:
    """Whether the runs of ``runs_dir`` (an experiment's folder) start from the warm start the design measured: the
    design's and the runs' held-out results of their warm start, for the same ``warm_start_key``. The key names the
    configuration, not the weights: the same configuration trained with other CPU kernels is another model
    (``provenance.pin_cpu_kernels``). None if either side has no result for the runs' key."""
    runs_file = Path(runs_dir) / "base_downstream.json"
    if not runs_file.is_file():
        return None
    key = read_json(runs_file)["warm_start_key"]
    design = next((f for f in sorted(Path(design_dir).rglob("base_downstream.json"))
                   if read_json(f).get("warm_start_key") == key), None)  # fmt: skip
    if design is None:
        return None

    def items(f: Path) -> list:
        return [v["correct"] for k, v in sorted(read_json(f).items()) if isinstance(v, dict) and "correct" in v]

    return {"warm_start_key": key, "design": _held_out_average(design), "runs": _held_out_average(runs_file),
            "identical": items(design) == items(runs_file)}  # fmt: skip
