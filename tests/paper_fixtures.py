"""Offline stand-ins for the paper's tokenizer and models: a byte-level tokenizer with DeepSeek-R1-Distill's
special tokens and chat format, a layer-less Qwen2 that writes a fixed script greedily, and a small random Qwen2."""

from __future__ import annotations

import torch

BOS, EOS, USER, ASSISTANT = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>"
# The DeepSeek-R1-Distill chat format (docs/paper.md §4.1): BOS, system text, user turn, assistant turn with "<think>".
TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'system' %}{{ m['content'] }}"
    "{% elif m['role'] == 'user' %}<｜User｜>{{ m['content'] }}"
    "{% elif m['role'] == 'assistant' %}<｜Assistant｜>{{ m['content'] }}<｜end▁of▁sentence｜>{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<｜Assistant｜><think>\n{% endif %}"
)


def byte_tokenizer(extra_specials: tuple[str, ...] = ()):
    """A byte-level tokenizer (one token per byte, so any text encodes) with DeepSeek's specials and chat format."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import PreTrainedTokenizerFast

    vocab = {c: i for i, c in enumerate(sorted(ByteLevel.alphabet()))}
    vocab |= {s: len(vocab) + k for k, s in enumerate((BOS, EOS, USER, ASSISTANT, *extra_specials))}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=BOS, eos_token=EOS, pad_token=EOS,
                                   add_bos_token=True, padding_side="left", chat_template=TEMPLATE,
                                   additional_special_tokens=[USER, ASSISTANT, *extra_specials])  # fmt: skip


def token_ids(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"]


def scripted_model(tok, script="\\boxed{1}z", after="\n", strength=10.0):
    """A Qwen2 with no layers whose greedy output is a bigram chain: after ``after`` it writes ``script``, then
    repeats its last character forever; every other token is followed by that character too. ``strength`` is the
    chain's logit (the fallback's is 1, the rest 0), so sampling follows the chain too when it is large."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    V = len(tok)
    cfg = Qwen2Config(vocab_size=V, hidden_size=V + (-V % 4), intermediate_size=8, num_hidden_layers=0,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      tie_word_embeddings=False, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id)  # fmt: skip
    model = Qwen2ForCausalLM(cfg).eval()
    chain = token_ids(tok, script)
    nxt = {token_ids(tok, after)[0]: chain[0]} | dict(zip(chain, chain[1:]))
    with torch.no_grad():
        model.model.embed_tokens.weight.copy_(torch.eye(V, cfg.hidden_size))  # one-hot: the last token is the state
        head = torch.zeros(V, cfg.hidden_size)
        head[chain[-1], :V] = 1.0
        for a, b in nxt.items():
            head[b, a] = strength
        model.lm_head.weight.copy_(head)
    return model


def random_qwen2(tok, seed: int = 0):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id)  # fmt: skip
    return Qwen2ForCausalLM(cfg).eval()


def build_mirror(root, answer: str = "4", layers: bool = False):
    """A hub mirror in the layout ``PaperPreset.mirror`` reads, from offline stand-ins: Qwen and Llama (layer-less
    models that write ``\\boxed{answer}`` greedily, so every rollout stops at once; with ``layers``, one-layer random
    Qwen2s instead, which LoRA's ``all-linear`` can adapt), GPT-2 (a tiny random GPT-2 on a character tokenizer),
    OpenRS and the five benchmarks from ``tests/fixtures/paper``."""
    import shutil
    from pathlib import Path

    from paper_lib.paper_scale.presets import PAPER_MODELS
    from paper_lib.training.models import char_tokenizer, tiny_gpt2

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for f in (Path(__file__).parent / "fixtures" / "paper").glob("*.jsonl"):
        shutil.copy(f, root / f.name)
    for key, extra in (("qwen-1.5b", ()), ("llama-1b", ("<|end_of_text|>",))):
        tok = byte_tokenizer(extra)
        folder = root / PAPER_MODELS[key]
        model = random_qwen2(tok) if layers else scripted_model(tok, script=f"\\boxed{{{answer}}}z", strength=30.0)
        model.save_pretrained(folder)
        tok.save_pretrained(folder)
    chars = char_tokenizer("LR>")
    tiny_gpt2(len(chars), seed=0).save_pretrained(root / PAPER_MODELS["gpt2"])
    chars.save_pretrained(root / PAPER_MODELS["gpt2"])
    return root
