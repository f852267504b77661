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

from collections.abc import Sequence

import torch

__all__ = ["MASKED_LOGIT", "check_token_ids", "restrict_vocabulary", "restricted_ids"]

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
