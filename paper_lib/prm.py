r"""The process reward model that GRPO induces (docs/paper.md §2.2).

Every token $t$ of completion $i$ lies in the process step $\lambda^{(i,t)}$; its step reward is the mean outcome
reward of that step's members, $R_{i,t} = r_{mean}(\lambda^{(i,t)})$, a Monte-Carlo estimate of the value of the
prefix. The step advantage is measured against the whole group:
$A_{i,t} = (R_{i,t} - r_{mean}(\mathbb G)) / (r_{std}(\mathbb G) + 10^{-4})$.
"""

from __future__ import annotations

import torch

from paper_lib.trie import process_set_sums

__all__ = ["STD_EPS", "outcome_advantages", "step_rewards", "step_advantages"]

# Added to the std as in the authors' code and TRL's GRPOTrainer.
STD_EPS = 1e-4


def _check_rewards(rewards: torch.Tensor, completion_ids: torch.Tensor) -> torch.Tensor:
    if not isinstance(rewards, torch.Tensor):
        try:
            rewards = torch.as_tensor(rewards, dtype=torch.get_default_dtype())
        except (TypeError, RuntimeError, ValueError) as err:
            raise ValueError(f"rewards must be numbers, one per completion; got {rewards!r}") from err
    if rewards.shape != completion_ids.shape[:-1]:
        raise ValueError(
            f"rewards must have shape {tuple(completion_ids.shape[:-1])} (one per completion), "
            f"got {tuple(rewards.shape)}"
        )
    if not rewards.dtype.is_floating_point:
        rewards = rewards.to(torch.get_default_dtype())
    if not torch.isfinite(rewards).all():
        raise ValueError("rewards must be finite (got NaN or inf)")
    return rewards.to(completion_ids.device)


def outcome_advantages(rewards: torch.Tensor) -> torch.Tensor:
    r"""GRPO's sequence advantage $a_i = (r_i - r_{mean}) / (r_{std} + 10^{-4})$ over the last axis.

    The std is the sample std (ddof = 1): the project-page example (+0.22 / −0.22 / +1.55 / −1.11) only comes out
    with it, and it is what ``torch.std`` (the authors' code, TRL) computes.
    """
    if rewards.shape[-1] < 2:
        raise ValueError("advantages need a group of at least 2 completions (the sample std of one is undefined)")
    if not rewards.is_floating_point() or not torch.isfinite(rewards).all():
        raise ValueError("rewards must be finite floats (an unscorable completion needs a reward, e.g. 0)")
    mean = rewards.mean(-1, keepdim=True)
    std = rewards.std(-1, keepdim=True)  # ddof = 1
    if not torch.isfinite(std).all():
        raise ValueError("rewards are too large: their standard deviation overflows; rescale them")
    return (rewards - mean) / (std + STD_EPS)


def step_rewards(completion_ids: torch.Tensor, completion_mask: torch.Tensor, rewards: torch.Tensor) -> torch.Tensor:
    r"""Step rewards $R_{i,t}$: mean outcome reward of the completions in $\lambda^{(i,t)}$.

    Args:
        completion_ids: ``(G, T)`` or ``(B, G, T)`` right-padded ids.
        completion_mask: same shape, 0/1.
        rewards: ``(G,)`` or ``(B, G)`` outcome rewards.

    Returns:
        ``(…, G, T)`` float tensor, 0 where the mask is 0.
    """
    rewards = _check_rewards(rewards, completion_ids)
    sizes, sums = process_set_sums(completion_ids, completion_mask, rewards)
    return sums / sizes.clamp(min=1)


def step_advantages(
    completion_ids: torch.Tensor, completion_mask: torch.Tensor, rewards: torch.Tensor
) -> torch.Tensor:
    r"""Step advantages $A_{i,t} = (R_{i,t} - r_{mean}(\mathbb G)) / (r_{std}(\mathbb G) + 10^{-4})$, ddof = 1.

    Returns:
        ``(…, G, T)`` float tensor, 0 where the mask is 0.
    """
    rewards = _check_rewards(rewards, completion_ids)
    if rewards.shape[-1] < 2:
        raise ValueError("step advantages need a group of at least 2 completions (sample std of one is undefined)")
    R = step_rewards(completion_ids, completion_mask, rewards)
    mean = rewards.mean(-1, keepdim=True).unsqueeze(-1)
    std = rewards.std(-1, keepdim=True).unsqueeze(-1)
    return (R - mean) / (std + STD_EPS) * (completion_mask != 0)
