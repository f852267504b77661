import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from paper_lib.groups import random_group  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def colliding_groups(n: int, seed: int = 0):
    """``n`` random groups built to collide: vocab 2–3, lengths 0–6, G 1–8, duplicates, strict prefixes, junk pads."""
    gen = torch.Generator().manual_seed(seed)
    for _ in range(n):
        G = int(torch.randint(1, 9, (), generator=gen))
        T = int(torch.randint(0, 7, (), generator=gen))
        vocab = int(torch.randint(2, 4, (), generator=gen))
        yield random_group(gen, G, T, vocab, share=0.7, junk=True)


@pytest.fixture
def repo() -> Path:
    return REPO
