"""Seeds → means, confidence intervals, peaks, win counts and paired tests (small, explicit formulas)."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as st

__all__ = ["mean_ci", "paired_t", "peak", "win_counts", "last_window_mean"]


def mean_ci(values, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and the two-sided t confidence interval ``(mean, low, high)`` over seeds; NaN bounds for n < 2."""
    x = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    m = float(x.mean())
    if len(x) < 2:
        return m, math.nan, math.nan
    half = float(st.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return m, m - half, m + half


def paired_t(a, b) -> tuple[float, float]:
    """Mean difference ``a − b`` over paired seeds and the two-sided paired t-test p-value (NaN if undefined)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or len(a) < 2:
        raise ValueError(f"paired_t needs two equal-length samples of >= 2, got {a.shape} and {b.shape}")
    d = a - b
    if np.allclose(d, d[0]):
        return float(d.mean()), (1.0 if d[0] == 0 else 0.0)
    return float(d.mean()), float(st.ttest_rel(a, b).pvalue)


def peak(steps, values) -> tuple[float, int]:
    """The highest value and the first step at which it is reached."""
    values = np.asarray(values, dtype=float)
    k = int(np.nanargmax(values))
    return float(values[k]), int(np.asarray(steps)[k])


def last_window_mean(steps, values, window: int) -> float:
    """Mean of ``values`` over the last ``window`` steps (Table 1: target frequency in the last 50 steps)."""
    steps, values = np.asarray(steps), np.asarray(values, dtype=float)
    return float(values[steps > steps.max() - window].mean())


def win_counts(deltas) -> dict[str, int]:
    """How many differences are wins (> 0), losses (< 0) and ties (== 0)."""
    d = np.asarray(deltas, dtype=float)
    return {"wins": int((d > 0).sum()), "losses": int((d < 0).sum()), "ties": int((d == 0).sum())}
