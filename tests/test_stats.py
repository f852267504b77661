"""Statistics against hand-worked values."""

import math

import pytest

from paper_lib.analysis.stats import last_window_mean, mean_ci, paired_t, peak, win_counts


def test_mean_ci_by_hand():
    m, lo, hi = mean_ci([1.0, 2.0, 3.0])
    # sd = 1, n = 3, t(0.975, 2) = 4.302653: half width 4.302653 / sqrt(3) = 2.484138
    assert m == 2.0 and lo == pytest.approx(2 - 2.484138, abs=1e-6) and hi == pytest.approx(2 + 2.484138, abs=1e-6)
    assert math.isnan(mean_ci([5.0])[1]) and math.isnan(mean_ci([])[0])


def test_paired_t_and_wins():
    diff, p = paired_t([1.0, 2.0, 3.0, 4.0], [0.0, 1.5, 2.0, 4.5])
    assert diff == pytest.approx(0.5) and 0 < p < 1
    # no spread in the differences: the t-test is undefined (NaN), whether they are all 0 or all equal
    assert paired_t([1.0, 1.0], [1.0, 1.0])[0] == 0.0 and math.isnan(paired_t([1.0, 1.0], [1.0, 1.0])[1])
    assert paired_t([2.0, 3.0], [1.0, 2.0])[0] == 1.0 and math.isnan(paired_t([2.0, 3.0], [1.0, 2.0])[1])
    with pytest.raises(ValueError, match="equal-length"):
        paired_t([1.0], [1.0])
    assert win_counts([0.1, -0.2, 0.0, 0.3]) == {"wins": 2, "losses": 1, "ties": 1}


def test_peak_and_last_window():
    assert peak([10, 20, 30, 40], [0.1, 0.5, 0.5, 0.2]) == (0.5, 20)  # first step of the peak
    assert last_window_mean(list(range(1, 251)), [0.0] * 200 + [1.0] * 50, 50) == 1.0


def test_clopper_pearson_against_scipy_and_by_hand():
    from scipy.stats import binomtest

    from paper_lib.analysis.stats import clopper_pearson

    for k, n in [(0, 5), (3, 20), (20, 20), (7, 13)]:
        ref = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
        assert clopper_pearson(k, n) == pytest.approx((ref.low, ref.high), abs=1e-12)
    assert clopper_pearson(0, 5)[1] == pytest.approx(1 - 0.025 ** (1 / 5))  # k = 0: 1 - (α/2)^(1/n)
    with pytest.raises(ValueError, match="0 <= k <= n"):
        clopper_pearson(6, 5)


def test_paired_permutation_p_against_brute_force_enumeration():
    import itertools

    import numpy as np

    from paper_lib.analysis.stats import paired_permutation_p

    rng = np.random.default_rng(0)
    for n in (1, 4, 7):
        a, b = rng.random(n).round(2), rng.random(n).round(2)
        d = a - b
        flips = [abs(sum(s * x for s, x in zip(signs, d))) for signs in itertools.product((1, -1), repeat=n)]
        assert paired_permutation_p(a, b) == pytest.approx(np.mean([f >= abs(d.sum()) - 1e-12 for f in flips]))
    assert paired_permutation_p([1.0] * 5, [0.0] * 5) == pytest.approx(2 / 32)  # the smallest p of 5 pairs
    assert math.isnan(paired_permutation_p([0.3, 0.3], [0.3, 0.3]))  # undefined, not p = 0 or 1
    big = paired_permutation_p(np.ones(30), np.zeros(30), n_resamples=20_000)  # Monte Carlo beyond 20 pairs
    assert big < 1e-3


def test_mde_is_the_normal_power_formula():
    from paper_lib.analysis.stats import mde_paired

    d = [0.1, -0.1, 0.3, -0.3]  # sd = sqrt(0.2 / 3), n = 4; (1.959964 + 0.841621) * sd / 2
    assert mde_paired(d) == pytest.approx((1.959964 + 0.841621) * math.sqrt(0.2 / 3) / 2, rel=1e-5)


def test_three_verdicts_follow_the_ci():
    from paper_lib.analysis.verdicts import Evidence, judge, paired_evidence

    up = paired_evidence([0.5, 0.6, 0.7, 0.6], [0.1, 0.2, 0.2, 0.1])
    assert up.n == 4 and up.estimate == pytest.approx(0.45) and up.ci_low > 0 and judge(up) == "reproduced"
    assert up.p == pytest.approx(2 / 16)  # 4 pairs all one way: the smallest sign-flip p
    assert judge(paired_evidence([0.1, 0.2, 0.2, 0.1], [0.5, 0.6, 0.7, 0.6])) == "contradicted"
    wide = Evidence(0.05, -0.2, 0.3, 0.6, 0.4, 5)
    assert judge(wide) == "inconclusive" and judge(wide, paper_size=0.5) == "contradicted"  # excludes the size
    assert judge(wide, paper_size=0.25) == "inconclusive"
    # a shifted claim: "a < b / 2" as q = b/2 - a > 0
    steps = paired_evidence([100.0, 120.0, 90.0], [40.0, 30.0, 50.0])  # b/2 - a with a = λ steps 40..., b = GRPO
    assert steps.estimate == pytest.approx((100 + 120 + 90) / 3 - 40)
    one = paired_evidence([0.5], [0.4])
    assert one.n == 1 and math.isnan(one.ci_low) and judge(one) == "inconclusive"
    nan_pair = paired_evidence([0.5, float("nan"), 0.7], [0.4, 0.3, 0.6])
    assert nan_pair.n == 2
    with pytest.raises(ValueError, match="equal-length"):
        paired_evidence([1.0, 2.0], [1.0])


def test_smoothed_peak_resists_one_lucky_evaluation():
    from paper_lib.analysis.stats import expected_max_normal, smoothed_peak

    steps, acc = [0, 10, 20, 30, 40], [0.2, 0.3, 0.9, 0.3, 0.4]
    assert peak(steps, acc) == (0.9, 20)
    top, at = smoothed_peak(steps, acc)  # centred means: .25 .467 .5 .533 .35
    assert top == pytest.approx((0.9 + 0.3 + 0.4) / 3) and at == 30
    assert expected_max_normal(1) == pytest.approx(0.0, abs=1e-9)
    assert expected_max_normal(2) == pytest.approx(1 / math.sqrt(math.pi), rel=1e-6)
    rng = __import__("numpy").random.default_rng(0)  # against simulation
    assert expected_max_normal(30) == pytest.approx(rng.standard_normal((200_000, 30)).max(1).mean(), abs=0.01)


def test_interval_verdicts_for_either_side_and_for_several_parts():
    from paper_lib.analysis.verdicts import combine, judge_bounds

    assert judge_bounds(0.6, 0.9, 0.5) == "reproduced" and judge_bounds(0.1, 0.4, 0.5) == "contradicted"
    assert judge_bounds(0.0, 0.003, 0.01, "below") == "reproduced" and judge_bounds(0.02, 0.1, 0.01, "below") == (
        "contradicted")  # fmt: skip
    assert judge_bounds(0.0, 0.02, 0.01, "below") == "inconclusive" and judge_bounds(math.nan, 1, 0) == "inconclusive"
    assert combine(["reproduced", "reproduced"]) == "reproduced"
    assert combine(["reproduced", "inconclusive"]) == "inconclusive"
    assert combine(["inconclusive", "contradicted", "reproduced"]) == "contradicted"
    with pytest.raises(ValueError, match="above' or 'below"):
        judge_bounds(0, 1, 0, "over")
