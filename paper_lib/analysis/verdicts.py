r"""Three verdicts for every claim REPORT.md checks: *reproduced*, *contradicted*, *inconclusive*.

Each claim is read as "a quantity $q$ exceeds a threshold $c$": $q$ is a paired difference over seeds (λ-GRPO − GRPO
for "λ-GRPO beats GRPO", $c = 0$), or a shifted one ($\tfrac12$ GRPO's step − λ-GRPO's step for "λ-GRPO peaks in
less than half the steps"). With the 95% CI $[\ell, h]$ of $q$:

- **reproduced**: $\ell > c$, the CI lies on the paper's side;
- **contradicted**: $h < c$, the CI excludes the paper's direction, or $h <$ the paper's effect size where the claim
  carries one (the effect, if any, is smaller than the paper's);
- **inconclusive**: neither, stated with the minimum detectable effect (MDE, 80% power, two-sided α = 0.05).

A cell with one run has no CI over seeds, so it is inconclusive unless an item-paired CI (evaluation noise only) is
given in its place, and then it says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from paper_lib.analysis.stats import mde_paired, mean_ci, paired_permutation_p

__all__ = ["VERDICTS", "Evidence", "paired_evidence", "judge", "judge_bounds", "combine"]

VERDICTS = ("reproduced", "contradicted", "inconclusive")


@dataclass(frozen=True)
class Evidence:
    """A paired difference over ``n`` units (seeds, or items): its mean, 95% CI, sign-flip p-value and MDE."""

    estimate: float
    ci_low: float
    ci_high: float
    p: float
    mde: float
    n: int

    def text(self, unit: str = "seeds", digits: int = 3) -> str:
        f = f"{{:+.{digits}f}}"
        ci = "" if math.isnan(self.ci_low) else f" [{f.format(self.ci_low)}, {f.format(self.ci_high)}]"
        p = "" if math.isnan(self.p) else f", p = {self.p:.2g}"
        mde = "" if math.isnan(self.mde) else f", MDE {self.mde:.{digits}f}"
        return f"{f.format(self.estimate)}{ci} over {self.n} {unit}{p}{mde}"


def paired_evidence(a, b, shift: float = 0.0) -> Evidence:
    """The evidence on ``a − b − shift`` from paired samples (NaN pairs dropped): t-interval, sign-flip p, MDE."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"need two equal-length 1-d samples, got shapes {a.shape} and {b.shape}")
    d = (a - b - shift)[~(np.isnan(a) | np.isnan(b))]
    if len(d) == 0:
        return Evidence(math.nan, math.nan, math.nan, math.nan, math.nan, 0)
    mean, low, high = mean_ci(d)
    p = paired_permutation_p(d, np.zeros_like(d)) if len(d) >= 2 else math.nan
    return Evidence(mean, low, high, p, mde_paired(d), len(d))


def judge(evidence: Evidence, threshold: float = 0.0, paper_size: float | None = None) -> str:
    """The verdict on "q > ``threshold``" from the CI of q; ``paper_size``: the paper's own value of q, if the claim
    carries one (a CI entirely below it contradicts the paper's size even when it does not exclude the direction)."""
    verdict = judge_bounds(evidence.ci_low, evidence.ci_high, threshold)
    if verdict == "inconclusive" and paper_size is not None and evidence.ci_high < paper_size:
        return "contradicted"
    return verdict


def judge_bounds(low: float, high: float, threshold: float, claim: str = "above") -> str:
    """The verdict on "the quantity lies ``claim`` (``"above"`` or ``"below"``) ``threshold``" from its interval
    ``[low, high]`` (a t-interval or an exact binomial one); NaN bounds are inconclusive."""
    if claim not in ("above", "below"):
        raise ValueError(f"claim must be 'above' or 'below', got {claim!r}")
    if math.isnan(low) or math.isnan(high):
        return "inconclusive"
    on_side, off_side = (low > threshold, high < threshold) if claim == "above" else (high < threshold,
                                                                                     low > threshold)  # fmt: skip
    return "reproduced" if on_side else ("contradicted" if off_side else "inconclusive")


def combine(verdicts) -> str:
    """One verdict for a claim about every part (each G, each method): contradicted if any part contradicts it,
    reproduced if every part reproduces it, else inconclusive."""
    verdicts = set(verdicts)
    if "contradicted" in verdicts:
        return "contradicted"
    return "reproduced" if verdicts == {"reproduced"} else "inconclusive"
