r"""Process sets: the prefix tree $\mathcal B(\mathbb G)$ of a group of completions.

For completion $i$ and position $t$ the process set is
$\lambda^{(i,t)} = \{ j : y^{(j)}_{:t+1} = y^{(i)}_{:t+1} \}$ (PAPER.md §1.2): the members of the group that agree
with $y^{(i)}$ on every token up to and including $t$, counting $i$ itself and exact duplicates.

Vectorised kernel: the pairwise longest common prefix $\ell_{ij}$ (first mismatch), then
$|\lambda^{(i,t)}| = \#\{ j : \ell_{ij} > t \}$ by a per-row sort and ``searchsorted``. The same sort gives the
sum of any per-completion value over the process set (used by :mod:`paper_lib.prm`).

Inputs follow TRL: right-padded ``(G, T)`` integer ids and a 0/1 mask that is a run of ones then zeros; a batch
of groups is ``(B, G, T)``. Everything stays on the input's device.
"""

from __future__ import annotations

import torch

__all__ = [
    "GROUP_STAT_NAMES",
    "ProcessNode",
    "ProcessTree",
    "check_group",
    "group_statistics",
    "lambda_weights",
    "pairwise_lcp",
    "process_set_sizes",
    "process_set_sums",
]

# Cap on the (rows, G, T) boolean block built at once, so one G=64, T=16k group stays far below 256 MB.
_MAX_BLOCK_ELEMENTS = 1 << 24


def check_group(completion_ids: torch.Tensor, completion_mask: torch.Tensor) -> torch.Tensor:
    """Validate a group (or batch of groups) and return its lengths, shape ``(..., G)``.

    Raises:
        ValueError: naming the problem (type, rank, shape, dtype, mask values, a mask with holes).
    """
    if not isinstance(completion_ids, torch.Tensor) or not isinstance(completion_mask, torch.Tensor):
        raise ValueError("completion_ids and completion_mask must be torch tensors")
    if completion_ids.dim() not in (2, 3):
        raise ValueError(f"completion_ids must have shape (G, T) or (B, G, T), got {tuple(completion_ids.shape)}")
    if completion_ids.shape != completion_mask.shape:
        raise ValueError(
            f"completion_mask shape {tuple(completion_mask.shape)} != completion_ids shape "
            f"{tuple(completion_ids.shape)}"
        )
    if completion_ids.dtype.is_floating_point or completion_ids.dtype.is_complex or completion_ids.dtype == torch.bool:
        raise ValueError(f"completion_ids must be integer token ids, got dtype {completion_ids.dtype}")
    if completion_ids.shape[-2] < 1:
        raise ValueError("a group needs at least one completion (G >= 1)")
    mask = completion_mask
    if mask.dtype != torch.bool:
        if not ((mask == 0) | (mask == 1)).all():
            raise ValueError("completion_mask must contain only 0 and 1")
        mask = mask != 0
    lengths = mask.sum(-1)
    positions = torch.arange(mask.shape[-1], device=mask.device)
    if not torch.equal(mask, positions < lengths.unsqueeze(-1)):
        raise ValueError("completion_mask must be a run of ones followed by zeros (right padding, no holes)")
    return lengths


def _row_blocks(G: int, T: int) -> int:
    return max(1, _MAX_BLOCK_ELEMENTS // max(1, G * T))


def pairwise_lcp(completion_ids: torch.Tensor, completion_mask: torch.Tensor) -> torch.Tensor:
    r"""Longest common prefix $\ell_{ij}$ of every pair of completions in a group.

    Args:
        completion_ids: ``(G, T)`` or ``(B, G, T)`` integer ids, right-padded.
        completion_mask: same shape, 0/1.

    Returns:
        ``LongTensor (..., G, G)``; the diagonal holds each completion's length.
    """
    lengths = check_group(completion_ids, completion_mask)
    ids, squeeze = (completion_ids, False) if completion_ids.dim() == 3 else (completion_ids[None], True)
    lengths = lengths if not squeeze else lengths[None]
    B, G, T = ids.shape
    positions = torch.arange(T, device=ids.device)
    valid = positions < lengths.unsqueeze(-1)  # (B, G, T)
    lcp = torch.empty(B, G, G, dtype=torch.long, device=ids.device)
    step = _row_blocks(G, T)
    for start in range(0, G, step):
        rows = slice(start, start + step)
        same = (ids[:, rows, None, :] == ids[:, None, :, :]) & valid[:, rows, None, :] & valid[:, None, :, :]
        # First mismatch = number of leading matches; the cumulative product keeps only the leading run.
        lcp[:, rows] = same.to(torch.uint8).cumprod(-1).sum(-1, dtype=torch.long)
    return lcp[0] if squeeze else lcp


def process_set_sums(
    completion_ids: torch.Tensor, completion_mask: torch.Tensor, values: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    r"""$|\lambda^{(i,t)}|$ and, if ``values`` (shape ``(..., G)``) is given, $\sum_{j\in\lambda^{(i,t)}} v_j$.

    Both outputs are ``(..., G, T)`` and 0 where the mask is 0.
    """
    lcp = pairwise_lcp(completion_ids, completion_mask)  # (..., G, G)
    G, T = completion_ids.shape[-2:]
    sorted_lcp, order = lcp.sort(dim=-1)
    t = torch.arange(T, device=lcp.device).expand(*lcp.shape[:-1], T).contiguous()
    first_above = torch.searchsorted(sorted_lcp, t, right=True)  # j's with lcp <= t come first
    sizes = G - first_above
    mask = completion_mask != 0
    sizes = sizes * mask
    if values is None:
        return sizes, None
    if values.shape != lcp.shape[:-1]:
        raise ValueError(
            f"values must have shape {tuple(lcp.shape[:-1])} (one per completion), got {tuple(values.shape)}"
        )
    row_values = values.unsqueeze(-2).expand_as(lcp).gather(-1, order)  # values in each row's lcp order
    suffix = row_values.flip(-1).cumsum(-1).flip(-1)
    suffix = torch.cat([suffix, suffix.new_zeros(*suffix.shape[:-1], 1)], dim=-1)
    sums = suffix.gather(-1, first_above) * mask
    return sizes, sums


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
    """
    sizes = process_set_sizes(completion_ids, completion_mask)
    mask = (completion_mask != 0).to(dtype or torch.get_default_dtype())
    return mask / sizes.clamp(min=1)


# ---------------------------------------------------------------------------------------------------------------
# The tree itself: B(G) as a compressed prefix tree (radix tree), for statistics, rendering and figures.


class ProcessNode:
    """A process set λ (a node of B(G)): its members and the token span ``[start, end)`` they share."""

    __slots__ = ("index", "members", "start", "end", "parent", "children", "level")

    def __init__(self, index: int, members: tuple[int, ...], start: int, end: int, parent: int | None, level: int):
        self.index, self.members, self.start, self.end = index, members, start, end
        self.parent, self.level, self.children = parent, level, []

    @property
    def size(self) -> int:
        """|λ|: the number of completions (duplicates included) that pass through this step."""
        return len(self.members)

    @property
    def n_tokens(self) -> int:
        return self.end - self.start

    def __repr__(self) -> str:
        return f"ProcessNode(members={self.members}, span=[{self.start}, {self.end}))"


class ProcessTree:
    r"""The compressed prefix tree $\mathcal B(\mathbb G)$ of one group (PAPER.md §1.2–1.3).

    The root is the whole group; its span is the group-wide common prefix (possibly empty). Each child splits its
    parent's members by the next token. A completion that is a strict prefix of another ends in a leaf with an
    empty span (as in the authors' ``InfPRMTree``); exact duplicates share one leaf.

    Args:
        sequences: one token sequence per completion (prompt excluded, padding removed).
    """

    def __init__(self, sequences):
        self.sequences = [tuple(int(x) for x in s) for s in sequences]
        if not self.sequences:
            raise ValueError("a group needs at least one completion (G >= 1)")
        self.nodes: list[ProcessNode] = []
        self._leaf = [0] * len(self.sequences)
        self._build(tuple(range(len(self.sequences))), 0, None, 0)

    @classmethod
    def from_tensors(cls, completion_ids: torch.Tensor, completion_mask: torch.Tensor) -> ProcessTree:
        """Build from one right-padded ``(G, T)`` group."""
        if completion_ids.dim() != 2:
            raise ValueError(f"ProcessTree takes one group (G, T), got shape {tuple(completion_ids.shape)}")
        lengths = check_group(completion_ids, completion_mask).tolist()
        return cls([row[:n] for row, n in zip(completion_ids.tolist(), lengths)])

    def _build(self, members: tuple[int, ...], start: int, parent: int | None, level: int) -> None:
        seqs = [self.sequences[m] for m in members]
        end = start
        while all(len(s) > end for s in seqs) and len({s[end] for s in seqs}) == 1:
            end += 1
        node = ProcessNode(len(self.nodes), members, start, end, parent, level)
        self.nodes.append(node)
        if parent is not None:
            self.nodes[parent].children.append(node.index)
        ended = tuple(m for m in members if len(self.sequences[m]) == end)
        if len(ended) == len(members):  # a leaf: one completion, or exact duplicates
            for m in members:
                self._leaf[m] = node.index
            return
        if ended:  # strict prefixes of the others end in an empty leaf
            self._build(ended, end, node.index, level + 1)
        by_token: dict[int, list[int]] = {}
        for m in members:
            if len(self.sequences[m]) > end:
                by_token.setdefault(self.sequences[m][end], []).append(m)
        for group in by_token.values():
            self._build(tuple(group), end, node.index, level + 1)

    # -- structure ----------------------------------------------------------------------------------------------
    @property
    def root(self) -> ProcessNode:
        return self.nodes[0]

    def __len__(self) -> int:
        return len(self.nodes)

    def path(self, i: int) -> list[ProcessNode]:
        """The nodes from the root to completion ``i``'s leaf."""
        node, out = self.nodes[self._leaf[i]], []
        while True:
            out.append(node)
            if node.parent is None:
                return out[::-1]
            node = self.nodes[node.parent]

    def sizes(self) -> list[list[int]]:
        r"""$|\lambda^{(i,t)}|$ per completion and token, read off the tree (an independent route to the kernel)."""
        return [[n.size for n in self.path(i) for _ in range(n.n_tokens)] for i in range(len(self.sequences))]

    # -- statistics (PAPER.md §2.4) -------------------------------------------------------------------------------
    @property
    def is_flat(self) -> bool:
        """True when no process step with |λ| ≥ 2 spans a token: the PRM collapses to the outcome reward."""
        return not any(n.size >= 2 and n.n_tokens > 0 for n in self.nodes)

    def path_depth(self, i: int) -> int:
        """Number of process steps (nodes spanning at least one token) from the root to completion ``i``."""
        return sum(n.n_tokens > 0 for n in self.path(i))

    def intermediate_proportion(self, i: int) -> float:
        """Share of completion ``i``'s tokens inside a shared step (|λ| ≥ 2); NaN for an empty completion."""
        n = len(self.sequences[i])
        shared = sum(node.n_tokens for node in self.path(i) if node.size >= 2)
        return shared / n if n else float("nan")

    # -- display --------------------------------------------------------------------------------------------------
    def tokens(self, node: ProcessNode) -> tuple[int, ...]:
        return self.sequences[node.members[0]][node.start : node.end]

    def render(self, decode=None, annotate=None) -> str:
        """A text drawing, one node per line. ``decode(tokens) -> str``; ``annotate(node) -> str`` adds a note."""
        decode = decode or (lambda toks: " ".join(map(str, toks)))
        lines = []

        def walk(node: ProcessNode, prefix: str, last: bool) -> None:
            branch = "" if node.parent is None else ("└── " if last else "├── ")
            text = decode(self.tokens(node)) or "∅"
            note = f"  {annotate(node)}" if annotate else ""
            lines.append(f"{prefix}{branch}{text}  |λ|={node.size} {list(node.members)}{note}")
            child_prefix = prefix if node.parent is None else prefix + ("    " if last else "│   ")
            for k, c in enumerate(node.children):
                walk(self.nodes[c], child_prefix, k == len(node.children) - 1)

        walk(self.root, "", True)
        return "\n".join(lines)

    def draw(self, ax=None, decode=None, annotate=None, **style):
        """Draw the tree on a matplotlib axis (see :func:`paper_lib.plots.draw_tree`)."""
        from paper_lib.plots import draw_tree

        return draw_tree(self, ax=ax, decode=decode, annotate=annotate, **style)


# ---------------------------------------------------------------------------------------------------------------
# Per-group statistics of B(G) (PAPER.md §2.4, §3.2), vectorised from the sizes alone.

GROUP_STAT_NAMES = (
    "flat",
    "n_steps",
    "depth_mean",
    "depth_median",
    "intermediate_mean",
    "intermediate_median",
    "weight_mean",
    "shared_token_frac",
)


def group_statistics(completion_ids: torch.Tensor, completion_mask: torch.Tensor) -> dict[str, torch.Tensor]:
    r"""Statistics of each group's tree B(G), one value per group (shape ``(B,)``; ``()`` for one group).

    Process sets along a completion are nested, so a new process step starts exactly where $|\lambda^{(i,t)}|$
    drops (or at $t = 0$). Hence, per completion: path depth = number of such starts; intermediate proportion =
    share of tokens with $|\lambda| \ge 2$. Per group: ``n_steps`` = number of process steps spanning ≥ 1 token
    (each start of a step with $|\lambda|$ members is seen $|\lambda|$ times), ``flat`` = no token has
    $|\lambda| \ge 2$, ``weight_mean`` = mean λ-GRPO weight over tokens, ``shared_token_frac`` = share of tokens
    with weight < 1. Medians average the two middle values. Definitions match :class:`ProcessTree` (tested).
    """
    sizes = process_set_sizes(completion_ids, completion_mask)
    single = sizes.dim() == 2
    sizes = sizes[None] if single else sizes
    mask = sizes > 0
    dropped = torch.ones_like(mask)
    dropped[..., 1:] = sizes[..., 1:] < sizes[..., :-1]
    starts = (dropped & mask).double()
    shared = (sizes >= 2).double()
    lengths = mask.sum(-1).double()  # (B, G)
    depth = starts.sum(-1)
    inter = torch.where(lengths > 0, shared.sum(-1) / lengths.clamp(min=1), torch.nan)
    weights = torch.where(mask, 1.0 / sizes.clamp(min=1).double(), 0.0)
    n_tokens = lengths.sum(-1).clamp(min=1)
    stats = {
        "flat": ~(shared.sum((-1, -2)) > 0),
        "n_steps": (starts * weights).sum((-1, -2)),
        "depth_mean": depth.mean(-1),
        "depth_median": depth.quantile(0.5, dim=-1),
        "intermediate_mean": inter.nanmean(-1),
        "intermediate_median": inter.nanquantile(0.5, dim=-1),
        "weight_mean": weights.sum((-1, -2)) / n_tokens,
        "shared_token_frac": shared.sum((-1, -2)) / n_tokens,
    }
    return {k: v[0] for k, v in stats.items()} if single else stats
