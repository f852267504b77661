r"""Process sets: the prefix tree $\mathcal B(\mathbb G)$ of a group of completions.

For completion $i$ and position $t$ the process set is
$\lambda^{(i,t)} = \{ j : y^{(j)}_{:t+1} = y^{(i)}_{:t+1} \}$ (docs/paper.md §1.2): the members of the group that agree
with $y^{(i)}$ on every token up to and including $t$, counting $i$ itself and exact duplicates.

Kernel (:func:`_lcp_host`, :func:`_expand`). Sort the group's completions lexicographically; then the longest
common prefix of any two is the minimum of the neighbour LCPs between them,
$\ell_{ij} = \min_{p_i < k \le p_j} \ell_{k-1,k}$, and $|\lambda^{(i,t)}| = \#\{ j : \ell_{ij} > t \}$ is a step
function of $t$ with at most $G$ steps: the sorted row $\ell_{i\cdot}$ gives the steps, and one ``repeat`` writes
the ``(G, T)`` output. Cost: $O(GT)$ for the $G - 1$ neighbour first mismatches, $O(G^2 \log G)$ for the rest. On
a CPU numpy sorts the rows as raw bytes (``memcmp``) without copying them, and the small steps run in numpy,
whose calls cost a fraction of torch's. On other devices (no row sort there) the pairwise first mismatch,
$O(G^2 T)$, stays on the device with no host synchronisation per group. The same steps give the sum of any
per-completion value over the process set (used by :mod:`paper_lib.prm`). ``tests/test_kernel.py`` checks every
route against the brute force of :mod:`paper_lib.reference` and against the previous pairwise kernel.

Inputs follow TRL: right-padded ``(G, T)`` integer ids and a 0/1 mask that is a run of ones then zeros; a batch
of groups is ``(B, G, T)``. Outputs are on the input's device.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

__all__ = [
    "check_group",
    "lambda_weights",
    "pairwise_lcp",
    "process_set_sizes",
    "process_set_sums",
]

# Cap on the (groups, rows, G, T) boolean block of the device path, so one G=64, T=16k group stays far below 256 MB.
_MAX_BLOCK_ELEMENTS = 1 << 24
_NOT_BINARY = "completion_mask must contain only 0 and 1"
_HOLES = "completion_mask must be a run of ones followed by zeros (right padding, no holes)"
_PAIR_CHUNK = 1 << 15  # tokens compared per chunk of neighbouring rows on the CPU (≈ 32 kB of temporaries)
_BITS = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}  # same-size integer views, for np.repeat
_UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}
_DTYPES = [d for d in vars(torch).values() if isinstance(d, torch.dtype)]
_FLOATING = frozenset(d for d in _DTYPES if d.is_floating_point or d.is_complex)
_NOT_IDS = _FLOATING | {torch.bool}


def check_group(completion_ids: torch.Tensor, completion_mask: torch.Tensor) -> torch.Tensor:
    """Validate a group (or batch of groups) and return its lengths, shape ``(..., G)``.

    Raises:
        ValueError: naming the problem (type, rank, shape, dtype, mask values, a mask with holes).
    """
    lengths = _lengths(completion_ids, completion_mask)
    return torch.from_numpy(lengths) if isinstance(lengths, np.ndarray) else lengths


def _lengths(completion_ids: torch.Tensor, completion_mask: torch.Tensor) -> torch.Tensor | np.ndarray:
    """:func:`check_group`, with the lengths of a CPU mask as a numpy array (the host kernel's input)."""
    if not isinstance(completion_ids, torch.Tensor) or not isinstance(completion_mask, torch.Tensor):
        raise ValueError("completion_ids and completion_mask must be torch tensors")
    if completion_ids.dim() not in (2, 3):
        raise ValueError(f"completion_ids must have shape (G, T) or (B, G, T), got {tuple(completion_ids.shape)}")
    if completion_ids.shape != completion_mask.shape:
        raise ValueError(
            f"completion_mask shape {tuple(completion_mask.shape)} != completion_ids shape "
            f"{tuple(completion_ids.shape)}"
        )
    if completion_ids.dtype in _NOT_IDS:
        raise ValueError(f"completion_ids must be integer token ids, got dtype {completion_ids.dtype}")
    if completion_ids.shape[-2] < 1:
        raise ValueError("a group needs at least one completion (G >= 1)")
    mask = completion_mask
    if mask.dtype not in _FLOATING and mask.is_cpu:
        return _host_lengths(mask.numpy())
    if mask.dtype != torch.bool:
        if not ((mask == 0) | (mask == 1)).all():
            raise ValueError(_NOT_BINARY)
        mask = mask != 0
    lengths = mask.sum(-1)
    positions = torch.arange(mask.shape[-1], device=mask.device)
    if not torch.equal(mask, positions < lengths.unsqueeze(-1)):
        raise ValueError(_HOLES)
    return lengths


def _host_lengths(mask: np.ndarray) -> np.ndarray:
    """The mask checks in numpy, read-only passes (several times faster than torch's on a CPU); int64 lengths.

    0/1 values: the unsigned view's maximum is at most 1. Right padding: the first 0 (``argmin``) sits at the length
    (at 0 for a row of ones). Equivalent to ``((mask == 0) | (mask == 1)).all()`` and
    ``mask == (arange(T) < lengths)``.
    """
    lengths = np.add.reduce(mask, axis=-1, dtype=np.int64)  # ufuncs, not the methods: no Python wrapper frame
    if mask.size == 0:
        return lengths
    if mask.dtype != np.bool_ and np.maximum.reduce(mask.view(_UNSIGNED[mask.itemsize]), axis=None) > 1:
        raise ValueError(_NOT_BINARY)
    if np.logical_or.reduce(mask.argmin(-1) != lengths % mask.shape[-1], axis=None):  # all ones: 0 = T mod T
        raise ValueError(_HOLES)
    return lengths


def _padded_keys(ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``(B * G, T)`` rows whose padding holds one value that no entry of ``ids`` takes."""
    B, G, T = ids.shape
    ids = ids.view(np.int64) if ids.dtype == np.uint64 else ids
    low = int(np.minimum.reduce(ids, axis=None))
    pad = np.int64(low - 1 if low > -(2**63) else _first_gap(ids))
    return np.where(np.arange(T) < lengths[..., None], ids, pad).reshape(B * G, T)


def _first_gap(ids: np.ndarray) -> int:
    """A value no entry takes, for ids that reach down to -2**63 (no tokenizer does)."""
    taken = np.unique(ids)
    gaps = np.flatnonzero(np.diff(taken) > 1)
    return int(taken[gaps[0]]) + 1 if gaps.size else int(taken[-1]) + 1


def _sorted_neighbours(rows: np.ndarray, lengths: np.ndarray, G: int) -> tuple[np.ndarray, ...]:
    """Sort each group's rows as raw bytes. Returns the sorted row indices and their lengths, both ``(B * G,)``,
    and the LCP of each sorted row with the one before it, ``(B, G)`` (column 0 is meaningless): the first
    mismatch, clamped to both lengths, found in chunks of rows (no sorted copy of the whole batch)."""
    B, T = rows.shape[0] // G, rows.shape[1]
    order = rows.view(_void(rows.itemsize * T)).reshape(B, G).argsort(-1)  # numpy compares void by memcmp
    order = (order if B == 1 else order + np.arange(0, B * G, G)[:, None]).ravel()
    ranked_len = lengths.reshape(B * G).take(order)
    previous = np.empty(B * G, dtype=np.int64)
    step = max(1, _PAIR_CHUNK // T)
    for k in range(0, B * G - 1, step):
        chunk = rows.take(order[k : k + step + 1], 0)
        differ = chunk[1:] != chunk[:-1]
        mismatch = differ.argmax(-1)
        previous[k + 1 : k + 1 + len(differ)] = np.where(differ[np.arange(len(differ)), mismatch], mismatch, T)
    tail = previous[1:]
    np.minimum(np.minimum(tail, ranked_len[1:], out=tail), ranked_len[:-1], out=tail)
    return order, ranked_len, previous.reshape(B, G)


def _lcp_host(ids: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""$\ell$ between the sorted rows of ``(B, G, T)`` ids, ``(B * G, G)``, and their rows ``(B * G,)``; $O(GT)$.

    Any lexicographic order of the completions keeps the rows of each prefix together, so between sorted rows
    $p < q$, $\ell = \min_{p < k \le q} \ell_{k-1,k}$: only $G - 1$ neighbours are compared token by token. numpy
    sorts the padded rows as raw bytes (a void dtype, ``memcmp``); that is such an order unless some completion is
    a strict prefix of another and its padding sorted it after that one (checked: then the padding is replaced by
    a value no token has, and the rows are sorted again). Row ``k`` of the result belongs to completion
    ``rows[k]`` of the flattened ``(B * G)`` batch. Equivalent to the pairwise first mismatch of
    :func:`_lcp_device`, ``(ids[:, :, None] != ids[:, None]).argmax(-1)`` clamped to both lengths, in $O(G^2 T)$.
    """
    B, G, T = ids.shape
    order, ranked_len, previous = _sorted_neighbours(np.ascontiguousarray(ids).reshape(B * G, T), lengths, G)
    shorter, before = ranked_len.reshape(B, G)[:, 1:], ranked_len.reshape(B, G)[:, :-1]
    if np.logical_or.reduce(np.logical_and(previous[:, 1:] == shorter, shorter < before), axis=None):
        order, ranked_len, previous = _sorted_neighbours(_padded_keys(ids, lengths), lengths, G)
    lcp = np.minimum.accumulate(np.where(_lower(G), T, previous[:, None, :]), axis=-1)  # [p, q > p], else T
    lcp = np.minimum(lcp, lcp.transpose(0, 2, 1)).reshape(B * G, G)
    return np.minimum(lcp, ranked_len[:, None], out=lcp), order  # the diagonal: the lengths


@functools.lru_cache(maxsize=256)
def _void(nbytes: int) -> np.dtype:
    """An opaque dtype of ``nbytes`` bytes: a row seen as one value, which numpy compares with ``memcmp``."""
    return np.dtype((np.void, nbytes))


@functools.lru_cache(maxsize=256)
def _lower(G: int) -> np.ndarray:
    """``[p, q]: q <= p``, shape ``(G, G)``."""
    return np.tri(G, dtype=bool)


def _lcp_device(ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    r"""$\ell_{ij}$ of ``(B, G, T)`` ids by the pairwise first mismatch, $O(G^2 T)$, in blocks on the ids' device.

    Nothing leaves the device (no host synchronisation): the path for GPUs, which have no row sort.
    """
    B, G, T = ids.shape
    lcp = torch.empty(B, G, G, dtype=torch.long, device=ids.device)
    rows = max(1, min(G, _MAX_BLOCK_ELEMENTS // (G * T)))
    groups = max(1, _MAX_BLOCK_ELEMENTS // (rows * G * T))
    for b in range(0, B, groups):
        for r in range(0, G, rows):
            differ = ids[b : b + groups, r : r + rows, None, :] != ids[b : b + groups, None, :, :]
            first = differ.view(torch.uint8).argmax(-1)
            found = differ.gather(-1, first.unsqueeze(-1)).squeeze(-1)
            lcp[b : b + groups, r : r + rows] = torch.where(found, first, T)  # identical rows: T
    return torch.minimum(lcp, torch.minimum(lengths[:, :, None], lengths[:, None, :]))


def _batched_lcp(completion_ids: torch.Tensor, completion_mask: torch.Tensor, sort: bool = False):
    r"""Validate; then $\ell_{ij}$ as ``(B, G, G)`` (one group: ``B = 1``) on the ids' device, or with ``sort``
    each row sorted, as ``(B * G, G)``, all that sizes and weights need (a numpy array on a CPU)."""
    lengths = _lengths(completion_ids, completion_mask)
    B, G, T = completion_ids.shape if completion_ids.dim() == 3 else (1, *completion_ids.shape)
    if not completion_ids.is_cpu:
        if B * T == 0:
            return torch.zeros(B, G, G, dtype=torch.long, device=completion_ids.device)
        lcp = _lcp_device(completion_ids.view(B, G, T), lengths.view(B, G).to(completion_ids.device))
        return lcp.sort(dim=-1).values if sort else lcp
    if B * T == 0:
        return np.zeros((B * G, G), dtype=np.int64) if sort else torch.zeros(B, G, G, dtype=torch.long)
    if not isinstance(lengths, np.ndarray):  # a float mask
        lengths = lengths.numpy()
    lcp, rows = _lcp_host(completion_ids.numpy().reshape(B, G, T), lengths.reshape(B, G))
    if sort:
        lcp.sort(-1)
    out = np.empty_like(lcp)
    out[rows] = lcp  # rows back in the completions' order
    if sort:
        return out
    position = (rows.reshape(B, G) % G).argsort(-1)  # columns too
    return torch.from_numpy(np.take_along_axis(out.reshape(B, G, G), position[:, None, :], -1))


@functools.lru_cache(maxsize=16)  # a few batch shapes; each table is (rows, G + 1) numbers
def _step_values(G: int, dtype: torch.dtype, device: torch.device, rows: int) -> torch.Tensor | np.ndarray:
    """Per step ``k = 0..G``: the set size ``G - k`` (``dtype`` int64) or the weight ``1/(G - k)`` (0 at ``k = G``);
    on a CPU as a read-only numpy ``(rows, G + 1)`` array of bits (see :func:`_expand`)."""
    sizes = torch.arange(G, -1, -1, device=device)
    if dtype != torch.long:
        sizes = torch.ones((), dtype=dtype, device=device) / sizes.clamp(min=1) * (sizes > 0)
    if device.type != "cpu":
        return sizes
    table = np.tile(_host_bits(sizes), (rows, 1))
    table.setflags(write=False)
    return table


def _host_bits(values: torch.Tensor) -> np.ndarray:
    """A numpy view of a CPU tensor; of its bits when numpy has no such dtype (bfloat16)."""
    try:
        return values.numpy()
    except TypeError:
        return values.view(_BITS[values.element_size()]).numpy()


def _expand(steps, values, shape: torch.Size, dtype: torch.dtype) -> torch.Tensor:
    r"""Step functions of $t$: ``out[b, i, t] = values[b, i, k]`` with $k = \#\{m : steps_{b,i,m} \le t\}$.

    ``steps``: ``B * G`` rows of ``G``, each sorted, in ``[0, T]``; ``values``: a tensor that broadcasts to
    ``(B, G, G + 1)``, or on a CPU a ``(B * G, G + 1)`` numpy array (of bits for dtypes numpy lacks); the output
    has ``shape`` (``(G, T)`` or ``(B, G, T)``) and ``dtype``.
    Equivalent to ``values.gather(-1, torch.searchsorted(steps, arange(T), right=True))``, in one pass that repeats
    each value for the length of its step (numpy's ``repeat`` on a CPU: several times faster than torch's).
    """
    G, T = shape[-2:]
    if isinstance(values, torch.Tensor):
        steps = torch.as_tensor(steps, device=values.device).reshape(-1, G)
        n = steps.shape[0]
        counts = steps.diff(dim=-1, prepend=steps.new_zeros(n, 1), append=steps.new_full((n, 1), T))
        values = values.expand(n // G, G, G + 1).flatten()
        return values.repeat_interleave(counts.flatten(), output_size=shape.numel()).view(shape)
    steps = steps.reshape(-1, G)
    counts = np.empty((steps.shape[0], G + 1), dtype=np.int64)
    counts[:, :G], counts[:, G] = steps, T
    np.subtract(counts[:, 1:], steps, out=counts[:, 1:])  # the length of each step
    out = torch.from_numpy(values.reshape(-1).repeat(counts.reshape(-1)).reshape(shape))
    return out if out.dtype == dtype else out.view(dtype)


def pairwise_lcp(completion_ids: torch.Tensor, completion_mask: torch.Tensor) -> torch.Tensor:
    r"""Longest common prefix $\ell_{ij}$ of every pair of completions in a group.

    Args:
        completion_ids: ``(G, T)`` or ``(B, G, T)`` integer ids, right-padded.
        completion_mask: same shape, 0/1.

    Returns:
        ``LongTensor (..., G, G)``; the diagonal holds each completion's length.
    """
    lcp = _batched_lcp(completion_ids, completion_mask)
    return lcp if completion_ids.dim() == 3 else lcp[0]


def process_set_sums(
    completion_ids: torch.Tensor, completion_mask: torch.Tensor, values: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    r"""$|\lambda^{(i,t)}|$ and, if ``values`` (shape ``(..., G)``) is given, $\sum_{j\in\lambda^{(i,t)}} v_j$.

    Both outputs are ``(..., G, T)`` and 0 where the mask is 0. With row $i$ of $\ell$ sorted,
    $\ell_{i,(0)} \le \dots \le \ell_{i,(G-1)} = len_i$, the set is $\{(k), \dots, (G-1)\}$ on
    $\ell_{i,(k-1)} \le t < \ell_{i,(k)}$: size $G - k$, and a suffix sum of the values in that order.
    """
    lcp = _batched_lcp(completion_ids, completion_mask, sort=values is None)  # sorted rows suffice for the sizes
    shape, device = completion_ids.shape, completion_ids.device
    if values is None:
        return _expand(lcp, _step_values(shape[-2], torch.long, device, shape[:-1].numel()), shape, torch.long), None
    if values.shape != shape[:-1]:
        raise ValueError(f"values must have shape {tuple(shape[:-1])} (one per completion), got {tuple(values.shape)}")
    G = shape[-2]
    steps, members = lcp.sort(dim=-1)
    ranked = values.to(device).reshape(-1, 1, G).expand(-1, G, G).gather(-1, members)  # each row's lcp order
    suffix = ranked.flip(-1).cumsum(-1).flip(-1)
    suffix = torch.cat([suffix, suffix.new_zeros(*suffix.shape[:-1], 1)], -1)
    if device.type == "cpu" and not suffix.requires_grad:
        steps, suffix = steps.numpy(), _host_bits(suffix.reshape(-1, G + 1))
    sums = _expand(steps, suffix, shape, values.dtype)
    return _expand(steps, _step_values(G, torch.long, device, shape[:-1].numel()), shape, torch.long), sums


def process_set_sizes(completion_ids: torch.Tensor, completion_mask: torch.Tensor) -> torch.Tensor:
    r"""$|\lambda^{(i,t)}| = \#\{j : y_j[{:}t{+}1] = y_i[{:}t{+}1]\}$, counting $i$ itself and duplicates.

    Args:
        completion_ids: ``(G, T)`` or ``(B, G, T)`` integer ids, right-padded; values under mask 0 are ignored.
        completion_mask: same shape, 0/1 (or bool), a run of ones then zeros.

    Returns:
        ``LongTensor`` of the input's shape, 0 where the mask is 0.
    """
    return process_set_sums(completion_ids, completion_mask)[0]


def lambda_weights(
    completion_ids: torch.Tensor, completion_mask: torch.Tensor, dtype: torch.dtype | None = None
) -> torch.Tensor:
    r"""Per-token λ-GRPO weights $1/|\lambda^{(i,t)}|$ (paper Eq. 9); 0 where the mask is 0.

    ``dtype`` defaults to torch's default float dtype; pass the loss's dtype (1/3 in float32 is not 1/3 in float64).
    Equivalent to ``mask / process_set_sizes(...).clamp(min=1)``, without the sizes in between.
    """
    if dtype is not None and not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point dtype (the weights are 1/|λ|), got {dtype}")
    steps = _batched_lcp(completion_ids, completion_mask, sort=True)
    dtype, shape = dtype or torch.get_default_dtype(), completion_ids.shape
    return _expand(steps, _step_values(shape[-2], dtype, completion_ids.device, shape[:-1].numel()), shape, dtype)
