"""Theorem 1 (L_GRPO = L_PRM, losses and gradients) on a tiny causal LM, with its negative controls."""

import pytest

from paper_lib.experiments.theorem import EXACT, SETTINGS, compare_on_group


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_theorem_settings_on_a_tiny_lm(setting):
    """Theorem 1 (loss and gradient) holds exactly where expected; the negative controls differ."""
    results = [compare_on_group(setting, seed) for seed in range(3)]
    worst = max(max(r["abs_dloss"], r["max_abs_dgrad"]) for r in results)
    if setting.expect_equal:
        assert worst < EXACT
    else:
        assert worst > 1e-3
