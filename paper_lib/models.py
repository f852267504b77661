"""Models that need no hub: tiny random causal LMs built from a config (more models arrive with the trainer)."""

from __future__ import annotations

import torch

__all__ = ["tiny_gpt2"]


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
