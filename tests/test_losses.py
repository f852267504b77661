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
        (dict(beta=float("nan")), "beta must be finite"),  # was treated as 0
        (dict(advantages=torch.zeros(3)), "advantages shape"),  # was broadcast
        (dict(weights=torch.ones(1, 3)), "weights shape"),
        (dict(ref_logps=torch.zeros(3), beta=0.04), "ref_logps shape"),
        (dict(mask=torch.full((2, 3), 2.0)), "only 0 and 1"),  # was never checked
    ],
)
def test_bad_arguments(kw, message):
    logps, mask, adv = torch.zeros(2, 3), kw.pop("mask", torch.ones(2, 3)), kw.pop("advantages", torch.zeros(2))
    with pytest.raises(ValueError, match=message):
        policy_loss(logps, mask, adv, **kw)


@pytest.mark.parametrize("loss", [grpo_loss, prm_loss, lambda_grpo_loss])
@pytest.mark.parametrize("rewards, message", [
    (torch.tensor([1.0, float("nan")]), "finite"),  # was a NaN loss
    (torch.tensor([1.0, float("inf")]), "finite"),
    (torch.zeros(2, 3), "rewards shape"),  # (G, T): was read as per-token advantages
    (torch.zeros(4), "rewards shape"),  # broadcast over a batch
])  # fmt: skip
def test_objectives_check_their_rewards(loss, rewards, message):
    ids, mask = torch.tensor([[1, 2, 0], [1, 3, 4]]), torch.tensor([[1, 1, 0], [1, 1, 1]])
    with pytest.raises(ValueError, match=message):
        loss(torch.zeros(2, 3, dtype=torch.float64), ids, mask, rewards)


def test_huge_rewards_are_refused_not_zeroed():
    with pytest.raises(ValueError, match="overflows"):
        outcome_advantages(torch.tensor([1e308, -1e308], dtype=torch.float64))  # gave all-zero advantages


@pytest.mark.parametrize("dtype", [torch.long, torch.int32, torch.int16, torch.uint8, torch.bool])
def test_lambda_weights_need_a_float_dtype(dtype):
    from paper_lib.trie import lambda_weights

    with pytest.raises(ValueError, match="floating-point dtype"):  # returned set sizes, bit patterns, wrong shapes
        lambda_weights(torch.tensor([[1, 2], [1, 3]]), torch.ones(2, 2), dtype=dtype)
