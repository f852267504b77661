r"""A policy restricted to a few token ids, for sampling *and* training (the toy task's {L, R}).

Restricting only the *sampling* (``suppress_tokens``, a logits processor, vLLM's ``allowed_token_ids``) leaves
the loss differentiating the full-vocabulary softmax $\pi_{full}$. For an allowed token $y$ after prefix $s$,
$\log\pi_{full}(y\mid s)=\log\pi_{A}(y\mid s)+\log q_A(s)$, where $q_A(s)$ is the mass $\pi_{full}$ puts on
the allowed set $A$ and $\pi_A$ is the restricted policy that was sampled. Its gradient adds
$\nabla\log q_A(s)$ to every token: a term that cancels where the advantages through $s$ sum to zero (GRPO's
root) but not under λ-GRPO's $1/|\lambda|$ weights, so the two methods are then trained on different objectives
and neither on the policy that was sampled.

:func:`restrict_vocabulary` makes the restriction part of the model: the LM head gets a fixed, non-trainable bias
of :data:`MASKED_LOGIT` on every other id. Generation and TRL's fused log-prob head (which reads
``lm_head.weight`` and ``lm_head.bias`` directly) then see the same logits, so the log-probs TRL trains on are
$\log\pi_A$, the masked ids get probability 0 (exactly, in float32) and no gradient, and the entropy is that of
$\pi_A$ (at most $\ln|A|$). A finite bias rather than $-\infty$: TRL's entropy is $-\sum p\log p$, and
$0\cdot(-\infty)$ would be NaN. The bias is a non-persistent buffer, so checkpoints stay plain models; whoever
loads one for the task installs the restriction again (:class:`~paper_lib.trainer.LambdaGRPOTrainer` does, from
``LambdaGRPOConfig.allowed_token_ids``).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch

__all__ = ["MASKED_LOGIT", "check_token_ids", "prune_vocabulary", "restrict_vocabulary", "restricted_ids"]

# exp(-1e4) underflows to 0 in float32/bfloat16, and -1e4 / temperature stays finite even in float16.
MASKED_LOGIT = -1e4


def check_token_ids(ids: Sequence[int]) -> list[int]:
    """``ids`` as a sorted list of distinct non-negative ints, or ValueError naming what is wrong."""
    if isinstance(ids, str | bytes) or not isinstance(ids, Sequence | torch.Tensor) or len(ids) == 0:
        raise ValueError(f"allowed_token_ids must be a non-empty sequence of token ids, got {ids!r}")
    values = [int(i) for i in ids] if all(_is_int(i) for i in ids) else None
    if values is None or min(values) < 0:
        raise ValueError(f"allowed_token_ids must be non-negative integers, got {list(ids)!r}")
    if len(set(values)) != len(values):
        raise ValueError(f"allowed_token_ids repeats an id: {list(ids)!r}")
    return sorted(values)


def _is_int(value) -> bool:
    if isinstance(value, torch.Tensor):
        return value.ndim == 0 and not value.is_floating_point() and value.dtype != torch.bool
    return isinstance(value, int) and not isinstance(value, bool)


def restrict_vocabulary(model, allowed_ids: Sequence[int]):
    """Give ``model``'s LM head a fixed bias: 0 on ``allowed_ids``, :data:`MASKED_LOGIT` elsewhere. Returns ``model``.

    Idempotent for the same ids (a resumed run installs it again); a different set, or a head with a bias of its
    own, raises ValueError. Works for tied and untied heads: only the bias is added, the weight is untouched.
    """
    ids = check_token_ids(allowed_ids)
    head = model.get_output_embeddings()
    if head is None or not isinstance(getattr(head, "weight", None), torch.Tensor):
        raise ValueError(f"{type(model).__name__} has no linear output embedding to restrict")
    vocab_size = head.weight.shape[0]
    if ids[-1] >= vocab_size:
        raise ValueError(f"allowed_token_ids {ids} exceed the LM head's {vocab_size} outputs")
    current = restricted_ids(model)
    if current is not None:
        if current != ids:
            raise ValueError(f"the LM head is already restricted to {current}, not {ids}")
        return model
    if getattr(head, "bias", None) is not None:
        raise ValueError(f"{type(model).__name__}'s LM head has a bias of its own; restricting it is not supported")
    bias = torch.full((vocab_size,), MASKED_LOGIT, dtype=head.weight.dtype, device=head.weight.device)
    bias[ids] = 0.0
    del head.bias  # nn.Linear registers bias=None as a parameter slot; a buffer takes its place
    head.register_buffer("bias", bias, persistent=False)
    return model


def restricted_ids(model) -> list[int] | None:
    """The ids ``model`` is restricted to by :func:`restrict_vocabulary`, or None when it is not restricted."""
    head = model.get_output_embeddings()
    bias = None if head is None else head._buffers.get("bias")
    if bias is None:
        return None
    return torch.nonzero(bias == 0).flatten().tolist()


def prune_vocabulary(model, tokenizer, chars: str):
    """A copy of ``model`` whose vocabulary is the tokenizer's pad, BOS and EOS plus the one-token strings ``chars``.

    For every sequence over those tokens the pruned model computes the same hidden states, and its logits are the
    original logits at the kept ids, up to float round-off (a smaller matmul may sum in another order). So the
    L/R-restricted policy is unchanged, while the LM head, its softmax, the sampling and the optimizer state shrink
    from the whole vocabulary (49,152 ids for SmolLM2, 21% of its parameters) to five rows: the toy task's
    pretrained-LM tier trains at about 2/3 of the cost. Returns ``(model, tokenizer)``; the new tokenizer is a
    character tokenizer (:func:`paper_lib.training.models.char_tokenizer`) with the original special strings.
    """
    from paper_lib.training.models import char_tokenizer

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
