import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

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


def save_tiny_policy(path: Path, chars: str):
    """A tiny Qwen2 (seed 0) with a character tokenizer over ``chars``, saved to ``path`` (TRL loads policies from a
    path, and builds the β > 0 reference model from it). Returns ``(str(path), tokenizer)``."""
    from paper_lib.training.models import char_tokenizer, tiny_qwen2

    tokenizer = char_tokenizer(chars)
    tiny_qwen2(tokenizer, seed=0).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path), tokenizer


@pytest.fixture(scope="module")
def tok():
    """The byte-level stand-in for the paper's tokenizers (tests/paper_fixtures.py); a module may define its own."""
    from paper_fixtures import byte_tokenizer

    return byte_tokenizer()


@pytest.fixture(scope="module")
def random_model(tok):
    from paper_fixtures import random_qwen2

    return random_qwen2(tok)
