"""Groups of completions to test and illustrate with: named strings, and random groups built to collide."""

from __future__ import annotations

import torch

__all__ = ["group_from_strings", "random_group", "FIG1_GROUP", "FIG1_REWARDS", "EXAMPLE_PRM_REWARDS"]

# The paper's Fig. 1 group (docs/paper.md §10 item 3) and its rewards read from the figure's reward bars.
FIG1_GROUP = ("ABCD", "ABEFHI", "JKLM", "JKLNQST", "JKLNQU", "VWYZ")
FIG1_REWARDS = (1.0, 0.0, 0.0, 0.0, 1.0, 1.0)
# The project page's example PRM (docs/paper.md §3.1): same tree, these rewards.
EXAMPLE_PRM_REWARDS = (0.5, 0.5, 1.0, 0.0, 0.0, 0.5)


def group_from_strings(strings, pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor, dict[int, str]]:
    """One token per character: right-padded ``(G, T)`` ids, mask, and the id → character vocabulary."""
    chars = sorted({c for s in strings for c in s})
    vocab = {c: k + 1 for k, c in enumerate(chars)}  # 0 is padding
    T = max((len(s) for s in strings), default=0)
    ids = torch.full((len(strings), T), pad_id, dtype=torch.long)
    mask = torch.zeros(len(strings), T, dtype=torch.long)
    for i, s in enumerate(strings):
        ids[i, : len(s)] = torch.tensor([vocab[c] for c in s], dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids, mask, {v: c for c, v in vocab.items()}


def random_group(
    generator: torch.Generator, G: int, max_len: int, vocab: int, share: float = 0.7, junk: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """A random right-padded group whose members share prefixes often.

    Each completion copies a random-length prefix of an earlier one with probability ``share`` (so strict prefixes
    and exact duplicates occur), then continues with random tokens from ``range(vocab)`` up to a random length in
    ``[0, max_len]``. With ``junk`` the padding holds random tokens, which the mask must hide.
    """
    ids = torch.randint(0, vocab, (G, max_len), generator=generator)
    lengths = torch.randint(0, max_len + 1, (G,), generator=generator)
    for i in range(1, G):
        if torch.rand((), generator=generator) < share:
            j = int(torch.randint(0, i, (), generator=generator))
            k = int(torch.randint(0, int(lengths[j]) + 1, (), generator=generator))
            ids[i, :k] = ids[j, :k]
            lengths[i] = max(int(lengths[i]), k) if torch.rand((), generator=generator) < 0.8 else k
    mask = (torch.arange(max_len) < lengths[:, None]).long()
    return (ids if junk else ids * mask), mask
