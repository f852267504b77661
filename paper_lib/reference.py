r"""Slow, literal versions of everything in :mod:`trie`, :mod:`prm` and :mod:`losses`: the test oracle.

Each function follows the definition or the equation as printed, with Python loops and no cleverness, so that a
reader can check it against docs/paper.md by eye. Per-token quantities are lists of lists (one list per completion).
"""

from __future__ import annotations

import statistics

import torch

from paper_lib.prm import STD_EPS
from paper_lib.tree import ProcessTree

__all__ = [
    "sequences_of",
    "process_set_sizes_bruteforce",
    "step_rewards_bruteforce",
    "step_advantages_bruteforce",
    "objective_literal",
    "eq8_objective",
    "eq9_each_step_once",
    "authors_trie_weights",
    "authors_lambda_weights",
]


def sequences_of(completion_ids: torch.Tensor, completion_mask: torch.Tensor) -> list[tuple[int, ...]]:
    """The unpadded token sequences of one ``(G, T)`` group."""
    return [tuple(int(x) for x, m in zip(row, mrow) if m) for row, mrow in zip(completion_ids, completion_mask)]


def process_set_sizes_bruteforce(seqs) -> list[list[int]]:
    r"""$|\lambda^{(i,t)}| = \#\{ j : y^{(j)}_{:t+1} = y^{(i)}_{:t+1} \}$, by comparing prefixes directly."""
    return [[sum(1 for other in seqs if other[: t + 1] == seq[: t + 1]) for t in range(len(seq))] for seq in seqs]


def step_rewards_bruteforce(seqs, rewards) -> list[list[float]]:
    r"""$R_{i,t} = \frac{1}{|\lambda^{(i,t)}|}\sum_{j \in \lambda^{(i,t)}} r^{(j)}$."""
    out = []
    for seq in seqs:
        row = []
        for t in range(len(seq)):
            members = [j for j, other in enumerate(seqs) if other[: t + 1] == seq[: t + 1]]
            row.append(sum(float(rewards[j]) for j in members) / len(members))
        out.append(row)
    return out


def step_advantages_bruteforce(seqs, rewards) -> list[list[float]]:
    r"""$A_{i,t} = (R_{i,t} - r_{mean}(\mathbb G)) / (r_{std}(\mathbb G) + 10^{-4})$ with the sample std."""
    rewards = [float(r) for r in rewards]
    mean, std = statistics.fmean(rewards), statistics.stdev(rewards)
    return [[(R - mean) / (std + STD_EPS) for R in row] for row in step_rewards_bruteforce(seqs, rewards)]


def _token_term(logp, old, ref, adv, beta, epsilon):
    r"""$\min(P a, \mathrm{clip}(P) a) - D$ for one token, written out."""
    P = torch.exp(logp - old.detach())
    D = beta * (torch.exp(ref - logp) - (ref - logp) - 1) if beta > 0 else 0.0
    return torch.min(P * adv, torch.clamp(P, 1 - epsilon, 1 + epsilon) * adv) - D


def objective_literal(
    logps, old_logps, ref_logps, lengths, advantages, *, weights=None, beta=0.0, epsilon=0.2, normalization="token"
):
    r"""The GRPO-family objective as printed (to *maximise*), one token at a time.

    ``advantages[i][t]`` (per token) or ``advantages[i]`` (per completion); ``weights[i][t]`` optional.
    ``"token"``: $\frac{1}{\sum_i len(y^{(i)})}\sum_i\sum_t$;
    ``"sequence"``: $\frac1G\sum_i \frac{1}{len(y^{(i)})}\sum_t$.
    """
    G = len(lengths)
    total, per_seq = 0.0, []
    for i in range(G):
        seq_sum = 0.0
        for t in range(lengths[i]):
            adv = advantages[i][t] if isinstance(advantages[i], (list, tuple)) else advantages[i]
            term = _token_term(logps[i, t], old_logps[i, t], ref_logps[i, t], adv, beta, epsilon)
            seq_sum = seq_sum + (term if weights is None else term * weights[i][t])
        total = total + seq_sum
        per_seq.append(seq_sum / max(lengths[i], 1))
    if normalization == "token":
        return total / max(sum(lengths), 1)
    return sum(per_seq) / G


def _process_step_objective(tree: ProcessTree, logps, ref_logps, rewards, beta, multiply_by_size: bool):
    """Sum over process steps λ and their positions of (|λ| or 1)·(P_{λ,t} A_λ − D_{λ,t}), on-policy (P = 1)."""
    rewards = [float(r) for r in rewards]
    mean, std = statistics.fmean(rewards), statistics.stdev(rewards)
    total, n_tokens = 0.0, sum(len(s) for s in tree.sequences)
    for node in tree.nodes:
        i = node.members[0]  # every member has the same prefix, so the same P and D
        A = (statistics.fmean(rewards[j] for j in node.members) - mean) / (std + STD_EPS)
        for t in range(node.start, node.end):
            term = _token_term(logps[i, t], logps[i, t], ref_logps[i, t], A, beta, epsilon=0.2)
            total = total + (node.size if multiply_by_size else 1) * term
    return total / max(n_tokens, 1)


def eq8_objective(tree, logps, ref_logps, rewards, beta=0.0):
    r"""Eq. 8 (reconstruction), the process-step form of GRPO:
    $\frac{1}{\sum len}\sum_{\lambda}\sum_{t\in\lambda}|\lambda|(P_{\lambda,t}A_\lambda - D_{\lambda,t})$."""
    return _process_step_objective(tree, logps, ref_logps, rewards, beta, multiply_by_size=True)


def eq9_each_step_once(tree, logps, ref_logps, rewards, beta=0.0):
    r"""λ-GRPO (Eq. 9) as "each process step once":
    $\frac{1}{\sum len}\sum_{\lambda}\sum_{t\in\lambda}(P_{\lambda,t}A_\lambda - D_{\lambda,t})$."""
    return _process_step_objective(tree, logps, ref_logps, rewards, beta, multiply_by_size=False)


# ---------------------------------------------------------------------------------------------------------------
# The authors' trie (docs/paper.md §1.3), re-written from its description: the speed baseline of notebook 06.


class _AuthorsNode:
    """One node of the authors' trie: how many real tokens it spans, which trajectories pass it, its children."""

    __slots__ = ("n_tokens", "members", "children")

    def __init__(self, span, members=None, children=None):
        self.n_tokens = sum(1 for tok in span if tok is not None)  # a None is the terminator, not a token
        self.children = children
        self.members = sorted(members if children is None else [m for c in children for m in c.members])

    def emit(self, prefix: torch.Tensor) -> dict[int, torch.Tensor]:
        """Depth-first: append this node's weights ``1/|λ|`` to the path so far; a leaf hands it to its members."""
        here = torch.cat((prefix, torch.full((self.n_tokens,), 1 / len(self.members), dtype=prefix.dtype)))
        if self.children is None:
            return {m: here for m in self.members}
        out = {}
        for child in self.children:
            out.update(child.emit(here))
        return out


def _authors_split(rows, start: int) -> _AuthorsNode:
    """Grow the common span of ``rows`` one position at a time, bucketing by token, until a bucket splits off."""
    if len(rows) == 1:
        members, tokens = rows[0]
        return _AuthorsNode(tokens[start:], members=members)
    end = start - 1
    buckets: dict = {None: None}
    while len(buckets.keys()) == 1:  # one position per pass, each pass a fresh dict and a copy of rows[1:]
        end += 1
        buckets = {rows[0][1][end]: [rows[0]]}
        for row in rows[1:]:
            if (token := row[1][end]) in buckets.keys():
                buckets[token].append(row)
            else:
                buckets.update({token: [row]})
    return _AuthorsNode(rows[0][1][start:end], children=[_authors_split(b, end) for b in buckets.values()])


def authors_trie_weights(sequences, dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
    r"""The authors' ``InfPRMTree`` weights $1/|\lambda^{(i,t)}|$, one tensor per full sequence (docs/paper.md §1.3).

    As in their code, step by step and at the same cost: exact duplicates are merged first (a membership test, then
    an insert: the tuple is hashed twice), the distinct sequences are right-padded with ``None`` as a terminator, a
    recursion splits at the first position where the tokens differ (scanning one position at a time with a fresh
    dict), and a depth-first walk concatenates one constant weight tensor per node. Their over-padding slip
    (``max_len - len(pair)``) is not copied: it changes nothing but the time.
    """
    merged: dict[tuple[int, ...], list[int]] = {}
    for i, seq in enumerate(map(tuple, sequences)):
        if seq in merged.keys():
            merged[seq].append(i)
        else:
            merged.update({seq: [i]})
    longest = max(len(seq) for seq in merged)
    rows = [(sorted(members), list(seq)) for seq, members in merged.items()]
    for _, tokens in rows:
        tokens.extend(None for _ in range(longest - len(tokens)))
    weights = _authors_split(rows, 0).emit(torch.tensor((), dtype=dtype))
    return [weights[i] for i in sorted(weights)]


def authors_lambda_weights(
    completion_ids: torch.Tensor, completion_mask: torch.Tensor, prompt=(), dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """The authors' weights for one right-padded ``(G, T)`` group, as a ``(G, T)`` tensor (0 under the mask).

    ``prompt`` (token ids) is put in front of every completion and sliced off afterwards, as the authors do; the
    result does not depend on it, only the time does. Equals :func:`paper_lib.trie.lambda_weights` (tested).
    """
    lengths = completion_mask.sum(-1).tolist()
    prompt = list(prompt)
    seqs = [prompt + row[:n] for row, n in zip(completion_ids.tolist(), lengths)]
    out = torch.zeros(completion_ids.shape, dtype=dtype)
    for i, (w, n) in enumerate(zip(authors_trie_weights(seqs, dtype), lengths)):
        out[i, :n] = w[len(w) - n :]
    return out
