"""``table_power``: can each λ-GRPO vs GRPO comparison of the report detect an effect of the paper's size?

One row per comparison: the seeds, both methods' scores, the paired difference with its 95% CI, the minimum
detectable difference (MDE, 80% power, α = 0.05), and ``rl_gain``, GRPO's gain over the starting policy, which
bounds how large any difference between two RL methods can be. A comparison can detect the paper's effect when
its MDE is at most that effect in this comparison's units (``paper_effect``); a reasoning stand-in is held to more
(issue 15): MDE ≤ 5% of GRPO's score (``mde_share``) and RL's own gain ≥ 3 MDE (``headroom``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from paper_lib.analysis import paper_numbers as paper
from paper_lib.paths import artifact_path

__all__ = ["POWER_COLUMNS", "power_table"]

POWER_COLUMNS = ["comparison", "n_seeds", "grpo", "lambda_grpo", "delta", "ci_low", "ci_high", "mde", "rl_gain",
                 "paper_effect", "detects_paper_effect", "mde_share", "headroom"]  # fmt: skip


def _read(key: str, scale: str, root) -> pd.DataFrame | None:
    path = artifact_path(key, scale, root)
    return pd.read_csv(path) if path.is_file() else None


def _toy_rows(scale, root) -> list[dict]:
    from paper_lib.analysis.tables import toy_verdict

    t, seeds = _read("table1_toy", scale, root), _read("table_toy_seeds", scale, root)
    if t is None or seeds is None:
        return []
    rows = []
    for tier, part in t.groupby("tier", sort=False):
        pairs = seeds[seeds.tier == tier].dropna(subset=["GRPO", "λ-GRPO"])
        v = toy_verdict(part, pairs)
        grpo = float(pairs["GRPO"].mean())
        rows.append({"comparison": f"Table 1 ({tier}): target frequency", "n_seeds": v["pairs"], "grpo": grpo,
                     "lambda_grpo": float(pairs["λ-GRPO"].mean()), "delta": v["delta"], "ci_low": v["ci_low"],
                     "ci_high": v["ci_high"], "mde": v["mde"], "rl_gain": grpo - float(pairs.p0_target.mean()),
                     "paper_effect": v["paper_delta"]})  # fmt: skip
    return rows


def _table2_rows(scale, root) -> list[dict]:
    t3 = _read("table3_differences", scale, root)
    if t3 is None:
        return []
    rows = []
    for r in t3[t3.set == "average"].itertuples():
        paper_gain = paper.table2_relative_gain(paper.table2_row(r.model), r.beta)
        rows.append({"comparison": f"Table 2 ({r.model}, β={r.beta:g}): held-out average", "n_seeds": int(r.seeds),
                     "grpo": r.grpo, "lambda_grpo": r.lambda_grpo, "delta": r.lambda_minus_grpo, "ci_low": r.ci_low,
                     "ci_high": r.ci_high, "mde": r.mde, "rl_gain": r.grpo - r.base,
                     "paper_effect": paper_gain * r.grpo})  # fmt: skip
    return rows


def _peak_rows(scale, root) -> list[dict]:
    from paper_lib.analysis.tables import PEAK_GAIN, peak_claims
    from paper_lib.experiments.plan import main_loss_type

    peaks = _read("table_peaks", scale, root)
    if peaks is None or "smoothed_peak" not in peaks:
        return []
    rows = []
    claims = peak_claims(peaks)
    for r in claims[claims.loss_type == main_loss_type(scale)].itertuples():
        grpo_runs = peaks[(peaks.model == r.model) & (peaks.beta == r.beta) & (peaks.method == "GRPO") &
                          (peaks.loss_type == r.loss_type)]  # fmt: skip
        rows.append({"comparison": f"validation peak ({r.model}, β={r.beta:g})", "n_seeds": int(r.seeds),
                     "grpo": r.grpo_peak, "lambda_grpo": r.lambda_peak, "delta": r.abs_improvement,
                     "ci_low": r.ci_low, "ci_high": r.ci_high, "mde": r.mde,
                     "rl_gain": r.grpo_peak - float(grpo_runs.first_validation.mean()),
                     "paper_effect": PEAK_GAIN * r.grpo_peak})  # fmt: skip
    return rows


def power_table(scale: str, root=None) -> pd.DataFrame:
    """``table_power`` from the registered tables of notebooks 02, 04 and 05 (rows of absent ones are left out).

    ``paper_effect``: the paper's difference in this comparison's units (Table 1: its mean Δ over the six configs;
    Table 2: its relative gain times our GRPO average; peaks: 10% of our GRPO peak). ``detects_paper_effect``:
    MDE ≤ paper_effect. ``mde_share``: MDE / GRPO's score. ``headroom``: rl_gain / MDE.
    """
    table = pd.DataFrame(_toy_rows(scale, root) + _table2_rows(scale, root) + _peak_rows(scale, root),
                         columns=POWER_COLUMNS[:10])  # fmt: skip
    table["detects_paper_effect"] = table.mde <= table.paper_effect  # False where the MDE is NaN (one seed)
    table["mde_share"] = table.mde / table.grpo
    table["headroom"] = table.rl_gain / table.mde
    return table[POWER_COLUMNS].replace({np.inf: np.nan, -np.inf: np.nan})
