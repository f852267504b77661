"""The process-set kernel (``paper_lib.trie``) against brute force, the previous kernel and the authors' trie.

The kernel has three routes to $\\ell_{ij}$: rows sorted as raw bytes (the usual CPU route), the same with the
padding replaced (when a completion that is a strict prefix of another sorted after it), and the pairwise first
mismatch (other devices). Every test here checks all that apply.
"""

import pytest
import torch
from conftest import colliding_groups

from paper_lib import trie
from paper_lib.bench.kernel import memory_case, peak_extra_memory_mb, realistic_group
from paper_lib.groups import random_group
from paper_lib.reference import (
    authors_lambda_weights,
    process_set_sizes_bruteforce,
    sequences_of,
    step_rewards_bruteforce,
)
from paper_lib.trie import lambda_weights, pairwise_lcp, process_set_sizes, process_set_sums


def previous_kernel(ids, mask):
    """The kernel this one replaced (pairwise LCP by a cumulative product over a (G, G, T) block), as a 2nd oracle."""
    valid = mask != 0
    same = (ids[:, None, :] == ids[None, :, :]) & valid[:, None, :] & valid[None, :, :]
    lcp = same.to(torch.uint8).cumprod(-1).sum(-1)
    t = torch.arange(ids.shape[-1])
    return (lcp[:, None, :] > t[None, :, None]).sum(-1) * valid


def _padded(rows, T):
    return [list(r) + [0] * (T - len(r)) for r in rows]


def _device_route(ids, mask):
    """Sizes by the pairwise route (the GPU's), run on the CPU: same code, same tensors."""
    ids3, mask3 = (ids, mask) if ids.dim() == 3 else (ids[None], mask[None])
    if ids.shape[-1] == 0:
        return torch.zeros(ids.shape, dtype=torch.long)
    lcp = trie._lcp_device(ids3, (mask3 != 0).sum(-1))
    sizes = torch.arange(ids3.shape[-2], -1, -1)
    return trie._expand(lcp.sort(dim=-1).values, sizes, ids.shape, torch.long)


@pytest.fixture
def fallbacks(monkeypatch):
    """Count the calls that needed the padding replaced."""
    calls = []
    original = trie._padded_keys

    def spy(ids, lengths):
        calls.append(ids.shape)
        return original(ids, lengths)

    monkeypatch.setattr(trie, "_padded_keys", spy)
    return calls


def test_every_route_matches_bruteforce_on_colliding_groups(fallbacks):
    n_fallback = 0
    for ids, mask in colliding_groups(300, seed=11):
        expected = _padded(process_set_sizes_bruteforce(sequences_of(ids, mask)), ids.shape[1])
        before = len(fallbacks)
        assert process_set_sizes(ids, mask).tolist() == expected
        n_fallback += len(fallbacks) > before
        assert _device_route(ids, mask).tolist() == expected
        weights = torch.tensor([[1 / c if c else 0.0 for c in row] for row in expected])
        assert torch.equal(lambda_weights(ids, mask, dtype=torch.float32), weights.float())
    assert 10 < n_fallback < 290  # both host routes were exercised


def test_sums_match_bruteforce(fallbacks):
    gen = torch.Generator().manual_seed(2)
    for ids, mask in colliding_groups(150, seed=12):
        values = torch.randn(ids.shape[0], generator=gen, dtype=torch.float64)
        sizes, sums = process_set_sums(ids, mask, values)
        for i, row in enumerate(step_rewards_bruteforce(sequences_of(ids, mask), values.tolist())):
            n = len(row)
            assert torch.allclose(sums[i, :n] / sizes[i, :n], torch.tensor(row, dtype=torch.float64), atol=1e-12)
            assert (sums[i, n:] == 0).all() and (sizes[i, n:] == 0).all()
    assert fallbacks


@pytest.mark.parametrize("G", [6, 36, 64])
def test_realistic_rollouts_match_the_previous_kernel(G):
    ids, mask = realistic_group(G, seed=G, mean_len=400, len_sd=100)
    expected = previous_kernel(ids, mask)
    assert torch.equal(process_set_sizes(ids, mask), expected)
    assert torch.equal(_device_route(ids, mask), expected)
    w = mask.to(torch.float32) / expected.clamp(min=1)
    assert torch.equal(lambda_weights(ids, mask, dtype=torch.float32), w)
    assert torch.equal(pairwise_lcp(ids, mask), pairwise_lcp(ids.flip(0), mask.flip(0)).flip(0, 1))


def test_long_rows_compared_in_many_chunks():
    ids, mask = realistic_group(20, seed=9, mean_len=4000, len_sd=800)  # a few rows per chunk of neighbours
    assert trie._PAIR_CHUNK // ids.shape[1] <= 6  # at most 6 rows per chunk: at least 4 chunks
    assert torch.equal(process_set_sizes(ids, mask), _device_route(ids, mask))


def test_batched_equals_per_group():
    gen = torch.Generator().manual_seed(4)
    groups = [random_group(gen, 7, 12, 3) for _ in range(9)]
    groups.append(realistic_group(7, seed=1, mean_len=12, len_sd=3, segment=2)[:2])
    T = max(ids.shape[1] for ids, _ in groups)
    ids = torch.stack([torch.nn.functional.pad(i, (0, T - i.shape[1]), value=5) for i, _ in groups])
    mask = torch.stack([torch.nn.functional.pad(m, (0, T - m.shape[1])) for _, m in groups])
    sizes, weights = process_set_sizes(ids, mask), lambda_weights(ids, mask)
    lcp = pairwise_lcp(ids, mask)
    for b in range(len(groups)):
        assert torch.equal(sizes[b], process_set_sizes(ids[b], mask[b]))
        assert torch.equal(weights[b], lambda_weights(ids[b], mask[b]))
        assert torch.equal(lcp[b], pairwise_lcp(ids[b], mask[b]))
    assert torch.equal(_device_route(ids, mask), sizes)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
def test_weights_dtype_is_mask_over_sizes(dtype):
    ids, mask = realistic_group(8, seed=3, mean_len=50, len_sd=10)
    sizes = process_set_sizes(ids, mask)
    assert torch.equal(lambda_weights(ids, mask, dtype=dtype), mask.to(dtype) / sizes.clamp(min=1))


def test_unusual_inputs():
    ids, mask = realistic_group(5, seed=2, mean_len=40, len_sd=10)
    expected = process_set_sizes(ids, mask)
    assert torch.equal(process_set_sizes(ids.int(), mask.bool()), expected)  # dtypes
    assert torch.equal(process_set_sizes(ids.to(torch.uint16), mask.to(torch.uint8)), expected)
    wide = torch.stack([ids, ids], -1)[..., 0]  # not contiguous
    assert torch.equal(process_set_sizes(wide, mask), expected)
    extreme = ids.clone()
    extreme[:, -1] = torch.iinfo(torch.int64).min  # the usual padding value is taken: find another
    extreme[0, 0] = torch.iinfo(torch.int64).max
    assert process_set_sizes(extreme, mask).tolist() == _padded(
        process_set_sizes_bruteforce(sequences_of(extreme, mask)), ids.shape[1]
    )
    assert process_set_sizes(ids[:1], mask[:1]).tolist() == mask[:1].tolist()  # G = 1
    assert process_set_sizes(ids.new_zeros(0, 5, 4), mask.new_zeros(0, 5, 4)).shape == (0, 5, 4)  # B = 0
    assert process_set_sizes(ids[:, :0], mask[:, :0]).shape == (5, 0)  # T = 0


def test_authors_reimplementation_matches_bruteforce():
    for k, (ids, mask) in enumerate(colliding_groups(300, seed=13)):
        expected = process_set_sizes_bruteforce(sequences_of(ids, mask))
        prompt = list(range(k % 3))  # the authors put the prompt in the trie and slice it off again
        got = authors_lambda_weights(ids, mask, prompt=prompt, dtype=torch.float64)
        assert got.tolist() == _padded([[1 / c for c in row] for row in expected], ids.shape[1])


def test_authors_reimplementation_on_realistic_rollouts():
    ids, mask = realistic_group(12, seed=5, mean_len=300, len_sd=60)
    assert torch.equal(authors_lambda_weights(ids, mask, prompt=range(64)), lambda_weights(ids, mask))


@pytest.mark.parametrize("strict_prefix", [False, True])
def test_peak_memory_of_one_large_group_is_bounded(strict_prefix):
    """G = 64, T = 16384: measured in a fresh process (peak RSS during the call), output included."""
    measured = peak_extra_memory_mb("lambda_weights", 64, 16384, strict_prefix)
    assert measured["extra_mb"] < 256
    # By sizes: the largest intermediates are the (G, T) output (4 MiB here) and, on the slower route, one int64
    # copy of the ids with the padding replaced (8 MiB); row chunks and (G, G) blocks are far smaller.
    assert measured["extra_mb"] < 4 * 8 + measured["output_mb"]


def test_memory_case_takes_the_intended_route(fallbacks):
    ids, mask = memory_case(8, 64, strict_prefix=False)
    lambda_weights(ids, mask)
    assert not fallbacks
    ids, mask = memory_case(8, 64, strict_prefix=True)
    lambda_weights(ids, mask)
    assert fallbacks


@pytest.mark.gpu
def test_cuda_matches_cpu():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA")
    for ids, mask in [realistic_group(G, seed=G, mean_len=300) for G in (6, 36, 64)] + list(colliding_groups(50)):
        for fn in (process_set_sizes, lambda_weights, pairwise_lcp):
            out = fn(ids.cuda(), mask.cuda())
            assert out.device.type == "cuda" and torch.equal(out.cpu(), fn(ids, mask))
        values = torch.randn(ids.shape[0], dtype=torch.float64)
        sums = process_set_sums(ids.cuda(), mask.cuda(), values.cuda())[1]
        assert torch.allclose(sums.cpu(), process_set_sums(ids, mask, values)[1])
