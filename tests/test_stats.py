"""Statistics against hand-worked values."""

import math

import pytest

from paper_lib.stats import last_window_mean, mean_ci, paired_t, peak, win_counts


def test_mean_ci_by_hand():
    m, lo, hi = mean_ci([1.0, 2.0, 3.0])
    # sd = 1, n = 3, t(0.975, 2) = 4.302653: half width 4.302653 / sqrt(3) = 2.484138
    assert m == 2.0 and lo == pytest.approx(2 - 2.484138, abs=1e-6) and hi == pytest.approx(2 + 2.484138, abs=1e-6)
    assert math.isnan(mean_ci([5.0])[1]) and math.isnan(mean_ci([])[0])


def test_paired_t_and_wins():
    diff, p = paired_t([1.0, 2.0, 3.0, 4.0], [0.0, 1.5, 2.0, 4.5])
    assert diff == pytest.approx(0.5) and 0 < p < 1
    assert paired_t([1.0, 1.0], [1.0, 1.0]) == (0.0, 1.0)
    with pytest.raises(ValueError, match="equal-length"):
        paired_t([1.0], [1.0])
    assert win_counts([0.1, -0.2, 0.0, 0.3]) == {"wins": 2, "losses": 1, "ties": 1}


def test_peak_and_last_window():
    assert peak([10, 20, 30, 40], [0.1, 0.5, 0.5, 0.2]) == (0.5, 20)  # first step of the peak
    assert last_window_mean(list(range(1, 251)), [0.0] * 200 + [1.0] * 50, 50) == 1.0
