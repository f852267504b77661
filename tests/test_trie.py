"""Process sets against brute force, named edge cases, the Fig. 1 tree, and invalid input."""

import math

import pytest
import torch
from conftest import colliding_groups

from paper_lib.groups import FIG1_GROUP, group_from_strings, random_group
from paper_lib.reference import process_set_sizes_bruteforce, sequences_of
from paper_lib.tree import ProcessTree
from paper_lib.trie import lambda_weights, pairwise_lcp, process_set_sizes


def _padded(rows, T):
    return [list(r) + [0] * (T - len(r)) for r in rows]


def test_sizes_match_bruteforce_on_colliding_sweep():
    n_checked = n_shared = 0
    for ids, mask in colliding_groups(400):
        seqs = sequences_of(ids, mask)
        expected = process_set_sizes_bruteforce(seqs)
        T = ids.shape[1]
        assert process_set_sizes(ids, mask).tolist() == _padded(expected, T)
        assert process_set_sizes(ids.int(), mask.bool()).tolist() == _padded(expected, T)  # dtype-agnostic
        assert ProcessTree(seqs).sizes() == expected  # the tree walk is a second, independent route
        w = lambda_weights(ids, mask)
        assert torch.allclose(w, torch.tensor(_padded([[1 / c for c in row] for row in expected], T), dtype=w.dtype))
        n_checked += 1
        n_shared += any(c > 1 for row in expected for c in row)
    assert n_checked == 400 and n_shared > 200  # the sweep really collides


def test_batch_of_groups_equals_each_group():
    gen = torch.Generator().manual_seed(3)
    groups = [random_group(gen, 5, 7, 2) for _ in range(6)]
    ids, mask = torch.stack([g[0] for g in groups]), torch.stack([g[1] for g in groups])
    batched = process_set_sizes(ids, mask)
    for b, (gi, gm) in enumerate(groups):
        assert torch.equal(batched[b], process_set_sizes(gi, gm))
    assert torch.equal(lambda_weights(ids, mask)[2], lambda_weights(*groups[2]))


def test_one_completion():
    ids, mask, _ = group_from_strings(["abc"])
    assert process_set_sizes(ids, mask).tolist() == [[1, 1, 1]]
    tree = ProcessTree.from_tensors(ids, mask)
    assert len(tree) == 1 and tree.is_flat and tree.path_depth(0) == 1


def test_all_identical_counts_duplicates():
    ids, mask, _ = group_from_strings(["abab"] * 4)
    assert process_set_sizes(ids, mask).tolist() == [[4] * 4] * 4
    assert torch.allclose(lambda_weights(ids, mask), torch.full((4, 4), 0.25))
    tree = ProcessTree.from_tensors(ids, mask)
    assert len(tree) == 1 and tree.root.members == (0, 1, 2, 3) and not tree.is_flat
    assert tree.intermediate_proportion(0) == 1.0


def test_strict_prefix_ends_in_an_empty_leaf():
    ids, mask, _ = group_from_strings(["ab", "abcd"])
    assert process_set_sizes(ids, mask).tolist() == [[2, 2, 0, 0], [2, 2, 1, 1]]
    tree = ProcessTree.from_tensors(ids, mask)
    spans = [(n.members, n.start, n.end) for n in tree.nodes]
    assert spans == [((0, 1), 0, 2), ((0,), 2, 2), ((1,), 2, 4)]
    assert tree.path_depth(0) == 1 and tree.path_depth(1) == 2
    assert tree.intermediate_proportion(0) == 1.0 and tree.intermediate_proportion(1) == 0.5


def test_no_shared_first_token_is_flat():
    ids, mask, _ = group_from_strings(["abc", "bca", "cab"])
    assert torch.equal(lambda_weights(ids, mask), torch.ones(3, 3))
    tree = ProcessTree.from_tensors(ids, mask)
    assert tree.is_flat and [tree.path_depth(i) for i in range(3)] == [1, 1, 1]


def test_padding_gets_weight_zero_and_junk_under_mask_is_ignored():
    ids = torch.tensor([[1, 2, 7, 7], [1, 2, 3, 9]])
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 0]])
    w = lambda_weights(ids, mask)
    assert w.tolist() == [[0.5, 0.5, 0.0, 0.0], [0.5, 0.5, 1.0, 0.0]]
    ids2 = ids.clone()
    ids2[mask == 0] = 0
    assert torch.equal(process_set_sizes(ids2, mask), process_set_sizes(ids, mask))


def test_empty_completions_and_empty_time_axis():
    ids, mask, _ = group_from_strings(["", "a", ""])
    assert process_set_sizes(ids, mask).tolist() == [[0], [1], [0]]
    tree = ProcessTree.from_tensors(ids, mask)
    assert math.isnan(tree.intermediate_proportion(0)) and tree.path_depth(0) == 0
    empty = torch.zeros(3, 0, dtype=torch.long)
    assert process_set_sizes(empty, empty).shape == (3, 0)


def test_fig1_tree_spans_and_members():
    ids, mask, vocab = group_from_strings(FIG1_GROUP)
    tree = ProcessTree.from_tensors(ids, mask)
    text = lambda n: "".join(vocab[t] for t in tree.tokens(n))  # noqa: E731
    got = {text(n): (n.members, n.start, n.end) for n in tree.nodes}
    assert got == {
        "": ((0, 1, 2, 3, 4, 5), 0, 0),
        "AB": ((0, 1), 0, 2),
        "CD": ((0,), 2, 4),
        "EFHI": ((1,), 2, 6),
        "JKL": ((2, 3, 4), 0, 3),
        "M": ((2,), 3, 4),
        "NQ": ((3, 4), 3, 5),
        "ST": ((3,), 5, 7),
        "U": ((4,), 5, 6),
        "VWYZ": ((5,), 0, 4),
    }
    assert [tree.path_depth(i) for i in range(6)] == [2, 2, 2, 3, 3, 1]
    assert [round(tree.intermediate_proportion(i), 4) for i in range(6)] == [0.5, 0.3333, 0.75, 0.7143, 0.8333, 0.0]
    rendered = tree.render(lambda toks: "".join(vocab[t] for t in toks))
    assert "├── JKL  |λ|=3 [2, 3, 4]" in rendered and "└── VWYZ  |λ|=1 [5]" in rendered


def test_pairwise_lcp_diagonal_is_length():
    ids, mask, _ = group_from_strings(["abc", "abd", "x"])
    assert pairwise_lcp(ids, mask).tolist() == [[3, 2, 0], [2, 3, 0], [0, 0, 1]]


@pytest.mark.parametrize(
    "ids, mask, message",
    [
        (torch.tensor([1, 2]), torch.tensor([1, 1]), "shape \\(G, T\\)"),
        (torch.zeros(1, 2, 3, 4, dtype=torch.long), torch.ones(1, 2, 3, 4), "shape \\(G, T\\)"),
        (torch.zeros(2, 3, dtype=torch.long), torch.ones(2, 4), "completion_mask shape"),
        (torch.zeros(2, 3), torch.ones(2, 3), "integer token ids"),
        (torch.zeros(2, 3, dtype=torch.long), torch.tensor([[1, 0, 1], [1, 1, 1]]), "no holes"),
        (torch.zeros(2, 3, dtype=torch.long), torch.tensor([[1, 2, 0], [1, 1, 1]]), "only 0 and 1"),
        (torch.zeros(0, 3, dtype=torch.long), torch.ones(0, 3), "at least one completion"),
        ([[1, 2]], [[1, 1]], "torch tensors"),
    ],
)
def test_invalid_input_raises_naming_the_problem(ids, mask, message):
    with pytest.raises(ValueError, match=message):
        process_set_sizes(ids, mask)


def test_tree_rejects_a_batch():
    with pytest.raises(ValueError, match="one group"):
        ProcessTree.from_tensors(torch.zeros(2, 2, 3, dtype=torch.long), torch.ones(2, 2, 3))


@pytest.mark.gpu
def test_cuda_matches_cpu():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA")
    ids, mask = random_group(torch.Generator().manual_seed(0), 16, 64, 2)
    out = process_set_sizes(ids.cuda(), mask.cuda())
    assert out.device.type == "cuda" and torch.equal(out.cpu(), process_set_sizes(ids, mask))


def test_group_statistics_match_the_tree():
    import statistics

    from paper_lib.tree import group_statistics

    for ids, mask in colliding_groups(300, seed=5):
        tree = ProcessTree(sequences_of(ids, mask))
        stats = {k: float(v) for k, v in group_statistics(ids, mask).items()}
        G = ids.shape[0]
        depths = [tree.path_depth(i) for i in range(G)]
        inter = [x for x in (tree.intermediate_proportion(i) for i in range(G)) if not math.isnan(x)]
        sizes = [c for row in tree.sizes() for c in row]
        assert stats["flat"] == tree.is_flat
        assert stats["n_steps"] == pytest.approx(sum(n.n_tokens > 0 for n in tree.nodes))
        assert stats["depth_mean"] == pytest.approx(statistics.fmean(depths))
        assert stats["depth_median"] == pytest.approx(statistics.median(depths))
        if inter:
            assert stats["intermediate_mean"] == pytest.approx(statistics.fmean(inter))
            assert stats["intermediate_median"] == pytest.approx(statistics.median(inter))
        if sizes:
            assert stats["weight_mean"] == pytest.approx(statistics.fmean(1 / c for c in sizes))
            assert stats["shared_token_frac"] == pytest.approx(statistics.fmean(c >= 2 for c in sizes))
    batch = group_statistics(*[torch.stack([t, t]) for t in group_from_strings(FIG1_GROUP)[:2]])
    assert batch["n_steps"].tolist() == [9.0, 9.0] and batch["depth_mean"].shape == (2,)
