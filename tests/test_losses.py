"""The objectives against the equations written out token by token (Theorem 1 on a tiny LM: test_theorem.py)."""

import pytest
import torch
from conftest import colliding_groups

from paper_lib.groups import group_from_strings
from paper_lib.losses import grpo_loss, k3_kl, lambda_grpo_loss, policy_loss, prm_loss
from paper_lib.prm import outcome_advantages
from paper_lib.reference import (
    objective_literal,
    process_set_sizes_bruteforce,
    sequences_of,
    step_advantages_bruteforce,
)


def _random_logps(gen, shape, spread):
    old = -torch.rand(shape, generator=gen, dtype=torch.float64) * 3
    logps = (old + spread * torch.randn(shape, generator=gen, dtype=torch.float64)).requires_grad_()
    ref = old + 0.3 * torch.randn(shape, generator=gen, dtype=torch.float64)
    return logps, old, ref


@pytest.mark.parametrize("normalization", ["token", "sequence"])
@pytest.mark.parametrize("beta", [0.0, 0.04])
@pytest.mark.parametrize("objective", ["grpo", "prm", "lambda_grpo"])
def test_objectives_match_the_literal_equations(objective, beta, normalization):
    """Losses and d loss / d logps for off-policy ratios (μ > 1, the clip active on some tokens)."""
    gen = torch.Generator().manual_seed(7)
    fn = {"grpo": grpo_loss, "prm": prm_loss, "lambda_grpo": lambda_grpo_loss}[objective]
    n_clipped = 0
    for ids, mask in list(colliding_groups(60, seed=2)):
        G, T = ids.shape
        if G < 2 or T == 0:
            continue
        rewards = torch.randint(0, 3, (G,), generator=gen).double()
        logps, old, ref = _random_logps(gen, (G, T), spread=0.3)
        kw = dict(old_logps=old, ref_logps=ref, beta=beta, epsilon=0.2, normalization=normalization)
        ours = fn(logps, ids, mask, rewards, **kw)
        seqs = sequences_of(ids, mask)
        lengths = [len(s) for s in seqs]
        if objective == "prm":
            adv, weights = step_advantages_bruteforce(seqs, rewards.tolist()), None
        else:
            adv = outcome_advantages(rewards).tolist()
            weights = (
                None if objective == "grpo" else [[1 / c for c in row] for row in process_set_sizes_bruteforce(seqs)]
            )
        literal = -objective_literal(logps, old, ref, lengths, adv, weights=weights, beta=beta, epsilon=0.2,
                                     normalization=normalization)  # fmt: skip
        assert torch.allclose(ours, torch.as_tensor(literal, dtype=ours.dtype), atol=1e-10)
        if sum(lengths):
            g_ours, g_lit = torch.autograd.grad(ours, logps)[0], torch.autograd.grad(literal, logps)[0]
            assert torch.allclose(g_ours, g_lit, atol=1e-10)
        ratio = torch.exp(logps.detach() - old)[mask.bool()]
        n_clipped += int(((ratio - 1).abs() > 0.2).sum())
    assert n_clipped > 50  # the clip branch was really exercised


def test_lambda_grpo_on_a_flat_group_is_grpo():
    ids, mask, _ = group_from_strings(["abc", "bc", "cab"])
    logps, old, ref = _random_logps(torch.Generator().manual_seed(0), ids.shape, 0.5)
    r = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    kw = dict(old_logps=old, ref_logps=ref, beta=0.04)
    assert torch.allclose(lambda_grpo_loss(logps, ids, mask, r, **kw), grpo_loss(logps, ids, mask, r, **kw))


def test_lambda_grpo_on_identical_completions_divides_by_G():
    ids, mask, _ = group_from_strings(["abc"] * 4)
    logps, old, ref = _random_logps(torch.Generator().manual_seed(0), ids.shape, 0.5)
    r = torch.tensor([1.0, 0.0, 0.0, 1.0], dtype=torch.float64)
    kw = dict(old_logps=old, ref_logps=ref, beta=0.04)
    assert torch.allclose(lambda_grpo_loss(logps, ids, mask, r, **kw), grpo_loss(logps, ids, mask, r, **kw) / 4)


def test_on_policy_ratio_is_one_and_gradient_is_advantage_weighted():
    ids, mask, _ = group_from_strings(["ab", "c"])
    logps = torch.tensor([[-1.0, -2.0], [-0.5, 0.0]], dtype=torch.float64, requires_grad=True)
    r = torch.tensor([1.0, 0.0], dtype=torch.float64)
    loss = grpo_loss(logps, ids, mask, r)  # old_logps=None: μ = 1
    a = outcome_advantages(r)
    assert torch.allclose(loss, -(2 * a[0] + a[1]) / 3)
    (grad,) = torch.autograd.grad(loss, logps)
    assert torch.allclose(grad, -torch.stack([a[0].repeat(2), torch.stack([a[1], a[1] * 0])]) / 3)


def test_k3_is_nonnegative_and_zero_on_the_reference():
    x = torch.linspace(-3, 0, 50, dtype=torch.float64)
    assert (k3_kl(x, x.flip(0)) >= 0).all() and torch.equal(k3_kl(x, x), torch.zeros_like(x))


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(normalization="batch"), "normalization must be one of"),
        (dict(beta=0.04), "needs ref_logps"),
        (dict(beta=-1.0), ">= 0"),
    ],
)
def test_bad_arguments(kw, message):
    logps, mask = torch.zeros(2, 3), torch.ones(2, 3)
    with pytest.raises(ValueError, match=message):
        policy_loss(logps, mask, torch.zeros(2), **kw)
