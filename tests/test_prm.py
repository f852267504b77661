"""The implicit PRM against the paper's worked examples and a brute-force reference."""

import pytest
import torch
from conftest import colliding_groups

from paper_lib.groups import EXAMPLE_PRM_REWARDS, FIG1_GROUP, FIG1_REWARDS, group_from_strings
from paper_lib.prm import outcome_advantages, step_advantages, step_rewards
from paper_lib.reference import sequences_of, step_advantages_bruteforce, step_rewards_bruteforce
from paper_lib.tree import ProcessTree, node_values


def _by_step(strings, rewards, fn):
    ids, mask, vocab = group_from_strings(strings)
    tree = ProcessTree.from_tensors(ids, mask)
    values = node_values(tree, fn(ids, mask, torch.tensor(rewards, dtype=torch.float64)))
    return {"".join(vocab[t] for t in tree.tokens(n)): values[n.index] for n in tree.nodes if n.n_tokens}


def test_project_page_example_advantages():
    """docs/paper.md §3.1: mean 0.42; AB +0.22, JKL −0.22, M +1.55, NQ −1.11 (these need ddof = 1)."""
    A = _by_step(FIG1_GROUP, EXAMPLE_PRM_REWARDS, step_advantages)
    assert {k: round(v, 2) for k, v in A.items()} == {
        "AB": 0.22, "CD": 0.22, "EFHI": 0.22, "JKL": -0.22, "M": 1.55, "NQ": -1.11, "ST": -1.11, "U": -1.11,
        "VWYZ": 0.22,
    }  # fmt: skip
    r = torch.tensor(EXAMPLE_PRM_REWARDS, dtype=torch.float64)
    ddof0 = (1 / 3 - r.mean()) / (r.std(correction=0) + 1e-4)
    assert round(float(ddof0), 2) == -0.24  # the population std would not reproduce the page


def test_fig1_step_rewards():
    R = _by_step(FIG1_GROUP, FIG1_REWARDS, step_rewards)
    assert R["AB"] == 0.5 and R["JKL"] == pytest.approx(1 / 3) and R["NQ"] == 0.5 and R["VWYZ"] == 1.0
    assert R["CD"] == 1.0 and R["EFHI"] == 0.0 and R["M"] == 0.0 and R["U"] == 1.0


def test_step_rewards_and_advantages_match_bruteforce():
    gen = torch.Generator().manual_seed(1)
    for ids, mask in colliding_groups(300, seed=1):
        G, T = ids.shape
        rewards = torch.randn(G, generator=gen, dtype=torch.float64)
        seqs = sequences_of(ids, mask)
        R = step_rewards(ids, mask, rewards)
        for i, row in enumerate(step_rewards_bruteforce(seqs, rewards.tolist())):
            assert torch.allclose(R[i, : len(row)], torch.tensor(row, dtype=torch.float64), atol=1e-12)
            assert (R[i, len(row) :] == 0).all()
        if G < 2:
            continue
        A = step_advantages(ids, mask, rewards)
        for i, row in enumerate(step_advantages_bruteforce(seqs, rewards.tolist())):
            assert torch.allclose(A[i, : len(row)], torch.tensor(row, dtype=torch.float64), atol=1e-10)


def test_flat_group_prm_is_the_orm():
    ids, mask, _ = group_from_strings(["abc", "bca", "cab", "d"])
    r = torch.tensor([1.0, 0.0, 0.5, 0.25], dtype=torch.float64)
    A = step_advantages(ids, mask, r)
    expected = outcome_advantages(r)[:, None].expand(-1, 3) * mask
    assert torch.allclose(A, expected)


def test_batch_of_groups():
    ids, mask, _ = group_from_strings(FIG1_GROUP)
    rewards = torch.tensor([FIG1_REWARDS, EXAMPLE_PRM_REWARDS], dtype=torch.float64)
    batched = step_advantages(torch.stack([ids, ids]), torch.stack([mask, mask]), rewards)
    assert torch.allclose(batched[1], step_advantages(ids, mask, rewards[1]))


@pytest.mark.parametrize(
    "rewards, message",
    [
        (torch.tensor([1.0, 0.0]), "rewards must have shape"),
        (torch.tensor([1.0, float("nan"), 0.0]), "finite"),
        ([1.0, None, 0.0], "must be numbers"),
    ],
)
def test_bad_rewards(rewards, message):
    ids, mask, _ = group_from_strings(["ab", "ac", "b"])
    with pytest.raises(ValueError, match=message):
        step_rewards(ids, mask, rewards)


def test_group_of_one_has_no_advantage():
    ids, mask, _ = group_from_strings(["ab"])
    assert step_rewards(ids, mask, torch.tensor([0.5])).tolist() == [[0.5, 0.5]]
    with pytest.raises(ValueError, match="at least 2"):
        step_advantages(ids, mask, torch.tensor([0.5]))
