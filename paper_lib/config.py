"""Experiment presets per scale: one frozen dataclass per experiment kind (DESIGN.md §4).

Every departure from the paper's setting is a field with a comment saying why.
"""

from __future__ import annotations

from dataclasses import dataclass

from paper_lib.paths import SCALES

__all__ = ["TheoremConfig", "theorem_config"]


@dataclass(frozen=True)
class TheoremConfig:
    """Notebook 01: how many random groups each Theorem 1 setting is checked on, and their shape."""

    n_groups: int
    group_size: int = 8
    max_len: int = 10
    vocab: int = 4  # a tiny vocabulary makes completions share prefixes heavily
    seed: int = 0


_THEOREM = {
    "smoke": TheoremConfig(n_groups=3),
    "small": TheoremConfig(n_groups=50),
    # The paper checks nothing numerically; larger groups (the downstream G = 6 and the toy task's 16) at no GPU cost.
    "paper": TheoremConfig(n_groups=100, group_size=16, max_len=24),
}


def theorem_config(scale: str) -> TheoremConfig:
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    return _THEOREM[scale]
