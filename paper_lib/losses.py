r"""The three objectives of the paper as pure functions of per-token log-probs (docs/paper.md §2–3).

All three share one per-token term (the PPO-clipped surrogate minus the k3 KL penalty),
$$\ell_{i,t} = \min\big(P_{i,t}\,\hat a_{i,t},\ \mathrm{clip}(P_{i,t}, 1-\epsilon, 1+\epsilon)\,\hat a_{i,t}\big)
  - D_{i,t},
\qquad P_{i,t} = \exp(\log\pi_\theta - [\log\pi_{\theta_{old}}]_{\text{no-grad}}),$$
and differ only in the advantage $\hat a$ and a per-token weight $w$:

| objective | $\hat a_{i,t}$ | $w_{i,t}$ |
|---|---|---|
| GRPO (Eq. 2)           | $a_i$ (outcome)       | 1 |
| $L_{PRM}$              | $A_{i,t}$ (step)      | 1 |
| λ-GRPO (Eq. 9)         | $a_i$ (outcome)       | $1/|\lambda^{(i,t)}|$ (policy *and* KL term) |

Normalisation: ``"token"`` divides the group's sum by $\sum_i len(y^{(i)})$ (DAPO; the theorem's assumption and
Eq. 9's normaliser, which stays the *unweighted* token count); ``"sequence"`` averages each completion's tokens,
then the completions (TRL's ``loss_type="grpo"``, the authors' code default). Losses are returned as quantities to
*minimise* (the negated objective). Shapes: ``(G, T)`` for one group; a ``(B, G, T)`` batch is normalised as one
pool of tokens (``"token"``) or one pool of completions (``"sequence"``).
"""

from __future__ import annotations

import math

import torch

from paper_lib.prm import outcome_advantages, step_advantages
from paper_lib.trie import check_group, lambda_weights

__all__ = ["NORMALIZATIONS", "k3_kl", "policy_loss", "grpo_loss", "prm_loss", "lambda_grpo_loss"]

NORMALIZATIONS = ("token", "sequence")


def k3_kl(logps: torch.Tensor, ref_logps: torch.Tensor) -> torch.Tensor:
    r"""Schulman's k3 estimator $\pi_{ref}/\pi - \ln(\pi_{ref}/\pi) - 1$, per token (≥ 0)."""
    delta = ref_logps - logps
    return torch.exp(delta) - delta - 1


def policy_loss(
    logps: torch.Tensor,
    completion_mask: torch.Tensor,
    advantages: torch.Tensor,
    *,
    weights: torch.Tensor | None = None,
    old_logps: torch.Tensor | None = None,
    ref_logps: torch.Tensor | None = None,
    beta: float = 0.0,
    epsilon: float = 0.2,
    normalization: str = "token",
) -> torch.Tensor:
    """The shared clipped-surrogate loss; the objectives below only choose ``advantages`` and ``weights``.

    Args:
        logps: ``(…, G, T)`` log-probs of the sampled tokens under the current policy (with grad).
        completion_mask: same shape, 0/1.
        advantages: ``(…, G)`` per completion or ``(…, G, T)`` per token.
        weights: optional ``(…, G, T)`` per-token weights applied to the policy and KL terms alike.
        old_logps: log-probs under the sampling policy; ``None`` means on-policy (μ = 1): ratio exactly 1.
        ref_logps: log-probs under the reference policy; required when ``beta > 0``.
        beta: KL coefficient. epsilon: PPO clip range.
        normalization: ``"token"`` or ``"sequence"``.

    Returns:
        Scalar loss (negated objective).
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    if logps.shape != completion_mask.shape:
        raise ValueError(f"logps shape {tuple(logps.shape)} != completion_mask shape {tuple(completion_mask.shape)}")
    if not (math.isfinite(beta) and beta >= 0 and epsilon >= 0):  # NaN fails both; epsilon = inf: no clipping
        raise ValueError(f"beta must be finite and >= 0, epsilon >= 0 (inf: no clip); got {beta=}, {epsilon=}")
    if not ((completion_mask == 0) | (completion_mask == 1)).all():
        raise ValueError("completion_mask must hold only 0 and 1")
    if advantages.shape not in (logps.shape, logps.shape[:-1]):
        raise ValueError(f"advantages shape {tuple(advantages.shape)} must be {tuple(logps.shape[:-1])} (per "
                         f"completion) or {tuple(logps.shape)} (per token)")  # fmt: skip
    for name, other in (("weights", weights), ("old_logps", old_logps), ("ref_logps", ref_logps)):
        if other is not None and other.shape != logps.shape:
            raise ValueError(f"{name} shape {tuple(other.shape)} != logps shape {tuple(logps.shape)}")
    if beta > 0 and ref_logps is None:
        raise ValueError("beta > 0 needs ref_logps (log-probs under the reference policy)")
    old = logps.detach() if old_logps is None else old_logps.detach()
    ratio = torch.exp(logps - old)
    adv = advantages if advantages.dim() == logps.dim() else advantages.unsqueeze(-1)
    per_token = torch.min(ratio * adv, ratio.clamp(1 - epsilon, 1 + epsilon) * adv)
    if beta > 0:
        per_token = per_token - beta * k3_kl(logps, ref_logps)
    mask = completion_mask.to(logps.dtype)
    w = mask if weights is None else weights.to(logps.dtype) * mask
    if normalization == "token":
        objective = (per_token * w).sum() / mask.sum().clamp(min=1)
    else:
        objective = ((per_token * w).sum(-1) / mask.sum(-1).clamp(min=1)).mean()
    return -objective


def _check_rewards(rewards: torch.Tensor, completion_ids: torch.Tensor) -> None:
    """One finite reward per completion: ``rewards`` has the shape of ``completion_ids`` without its last axis."""
    if rewards.shape != completion_ids.shape[:-1]:
        raise ValueError(f"rewards shape {tuple(rewards.shape)} must be {tuple(completion_ids.shape[:-1])}: one per "
                         "completion (per-token advantages go to policy_loss)")  # fmt: skip


def grpo_loss(logps, completion_ids, completion_mask, rewards, **kw) -> torch.Tensor:
    r"""GRPO (docs/paper.md §2.1): outcome advantage $a_i$ on every token. ``kw`` as in :func:`policy_loss`."""
    check_group(completion_ids, completion_mask)
    _check_rewards(rewards, completion_ids)
    return policy_loss(logps, completion_mask, outcome_advantages(rewards.to(logps.dtype)), **kw)


def prm_loss(logps, completion_ids, completion_mask, rewards, **kw) -> torch.Tensor:
    r"""$L_{PRM}$ (docs/paper.md §2.2): the step advantage $A_{i,t}$ of each token's process step."""
    _check_rewards(rewards, completion_ids)
    advantages = step_advantages(completion_ids, completion_mask, rewards.to(logps.dtype))
    return policy_loss(logps, completion_mask, advantages, **kw)


def lambda_grpo_loss(logps, completion_ids, completion_mask, rewards, **kw) -> torch.Tensor:
    r"""λ-GRPO (Eq. 9): GRPO with every token's policy and KL terms divided by $|\lambda^{(i,t)}|$."""
    _check_rewards(rewards, completion_ids)
    weights = lambda_weights(completion_ids, completion_mask, dtype=logps.dtype)
    return policy_loss(logps, completion_mask, outcome_advantages(rewards.to(logps.dtype)), weights=weights, **kw)
