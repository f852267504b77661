"""Seeds → means, confidence intervals, peaks, win counts and paired tests (small, explicit formulas)."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as st

from paper_lib.rundir import last_window_mean

__all__ = [
    "mean_ci",
    "paired_t",
    "peak",
    "win_counts",
    "last_window_mean",
    "clopper_pearson",
    "paired_permutation_p",
    "mde_paired",
    "expected_max_normal",
    "smoothed_peak",
]


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
    if np.allclose(d, d[0]):  # no spread: the t statistic is 0/0 or ±inf, so the test is undefined
        return float(d.mean()), math.nan
    return float(d.mean()), float(st.ttest_rel(a, b).pvalue)


def peak(steps, values) -> tuple[float, int]:
    """The highest value and the first step at which it is reached."""
    values = np.asarray(values, dtype=float)
    k = int(np.nanargmax(values))
    return float(values[k]), int(np.asarray(steps)[k])


def smoothed_peak(steps, values, width: int = 3) -> tuple[float, int]:
    """The highest centred moving average over ``width`` consecutive evaluations (fewer at the ends) and its first
    step: a peak less inflated by evaluation noise than the raw maximum."""
    import pandas as pd

    smooth = pd.Series(np.asarray(values, dtype=float)).rolling(width, center=True, min_periods=1).mean()
    return peak(steps, smooth.to_numpy())


def expected_max_normal(k: int) -> float:
    """E[max of ``k`` independent standard normals] (numerical integral; 1 → 0, 30 → 2.04): how far the raw maximum
    of ``k`` evaluations of a flat curve lies above its level, in units of one evaluation's standard error."""
    if not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    x = np.linspace(-10, 10, 20001)
    density = k * st.norm.pdf(x) * st.norm.cdf(x) ** (k - 1)
    return float(np.trapezoid(x * density, x))


def win_counts(deltas) -> dict[str, int]:
    """How many differences are wins (> 0), losses (< 0) and ties (== 0)."""
    d = np.asarray(deltas, dtype=float)
    return {"wins": int((d > 0).sum()), "losses": int((d < 0).sum()), "ties": int((d == 0).sum())}


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The exact (Clopper–Pearson) two-sided interval for a binomial proportion ``k / n``."""
    if not (isinstance(k, int | np.integer) and isinstance(n, int | np.integer) and 0 <= k <= n and n >= 1):
        raise ValueError(f"need integers 0 <= k <= n, n >= 1; got {k=}, {n=}")
    alpha = 1 - level
    low = 0.0 if k == 0 else float(st.beta.ppf(alpha / 2, k, n - k + 1))
    high = 1.0 if k == n else float(st.beta.ppf(1 - alpha / 2, k + 1, n - k))
    return low, high


def paired_permutation_p(a, b, n_resamples: int = 200_000, seed: int = 0) -> float:
    """Two-sided p-value of the mean paired difference ``a − b`` under sign flips (exact up to 2^20 pairs, else
    ``n_resamples`` random flips). Makes no normality assumption, so it fits bimodal outcomes; with n pairs the
    smallest attainable p is 2 / 2^n (5 pairs: 0.0625). NaN when every difference is 0."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if d.ndim != 1 or len(d) < 1 or np.isnan(d).any():
        raise ValueError(f"need two equal-length 1-d samples without NaN, got {np.shape(a)} and {np.shape(b)}")
    if not d.any():
        return math.nan
    if len(d) <= 20:
        signs = 1 - 2 * ((np.arange(2 ** len(d))[:, None] >> np.arange(len(d))) & 1)
    else:
        signs = np.random.default_rng(seed).choice([-1, 1], size=(n_resamples, len(d)))
    observed = abs(d.sum())
    return float(np.mean(np.abs(signs @ d) >= observed - 1e-12))


def mde_paired(differences, power: float = 0.8, alpha: float = 0.05) -> float:
    """The smallest mean paired difference detectable at ``power`` (two-sided ``alpha``), normal approximation:
    ``(z_{1-α/2} + z_{power}) · sd / √n``."""
    d = np.asarray(differences, dtype=float)
    if len(d) < 2:
        return math.nan
    return float((st.norm.ppf(1 - alpha / 2) + st.norm.ppf(power)) * d.std(ddof=1) / math.sqrt(len(d)))
