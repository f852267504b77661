r"""The tree $\mathcal B(\mathbb G)$ of one group as an object, and per-group statistics (docs/paper.md §1.2, §2.4).

:mod:`paper_lib.trie` computes process-set sizes token by token (the fast kernel); this module builds the compressed
prefix tree itself for statistics, rendering and figures, and summarises each group's tree from the sizes.
Both ``ProcessTree`` and ``group_statistics`` are also importable from :mod:`paper_lib.trie`.
"""

from __future__ import annotations

import math

import torch

from paper_lib.trie import check_group, process_set_sizes

__all__ = ["GROUP_STAT_NAMES", "ProcessNode", "ProcessTree", "group_statistics"]


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
    r"""The compressed prefix tree $\mathcal B(\mathbb G)$ of one group (docs/paper.md §1.2–1.3).

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

    # -- statistics (docs/paper.md §2.4) --------------------------------------------------------------------------
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


def node_values(tree: ProcessTree, per_token: torch.Tensor) -> dict[int, float]:
    """Read a per-token quantity (constant on each process step) at each node; NaN for nodes without tokens."""
    return {n.index: float(per_token[n.members[0], n.start]) if n.n_tokens else math.nan for n in tree.nodes}


# ---------------------------------------------------------------------------------------------------------------
# Per-group statistics of B(G) (docs/paper.md §2.4, §3.2), vectorised from the sizes alone.

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
