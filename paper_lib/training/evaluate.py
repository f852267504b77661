"""Greedy evaluation on held-out sets: accuracy ± SEM (ddof = 1), as the paper's Table 2 reports."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

log = logging.getLogger(__name__)

__all__ = [
    "greedy_completions",
    "accuracy_sem",
    "Validation",
    "validate",
    "shard_indices",
    "reward_rows",
    "reward_summary",
]


def accuracy_sem(correct: list[float]) -> tuple[float, float]:
    r"""Mean and standard error with ddof = 1, $\sqrt{p(1-p)/(n-1)}$ for 0/1 scores (docs/paper.md §4.1)."""
    n = len(correct)
    if n == 0:
        return math.nan, math.nan
    p = sum(correct) / n
    if n == 1:
        return p, math.nan
    var = sum((c - p) ** 2 for c in correct) / (n - 1)
    return p, math.sqrt(var / n)


def greedy_ids(model, tokenizer, prompts: list[list[int]], max_new_tokens: int, batch_size: int = 64,
               logits_processor=None) -> list[list[int]]:  # fmt: skip
    """Greedy HF ``generate`` from token ids in left-padded batches; each completion up to and including its first
    EOS. The model's train/eval mode is restored afterwards. ``logits_processor``: a factory called once per batch
    (the paper scale's boxed stop)."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    eos = {tokenizer.eos_token_id}
    was_training, out = model.training, []
    model.eval()
    try:
        for start in range(0, len(prompts), batch_size):
            batch = prompts[start : start + batch_size]
            width = max(len(p) for p in batch)
            ids = torch.tensor([[pad] * (width - len(p)) + p for p in batch], device=model.device)
            mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in batch], device=model.device)
            extra = {"logits_processor": logits_processor()} if logits_processor else {}
            with torch.no_grad():
                generated = model.generate(input_ids=ids, attention_mask=mask, do_sample=False,
                                           max_new_tokens=max_new_tokens, pad_token_id=pad, **extra)  # fmt: skip
            for row in generated[:, width:].tolist():
                cut = next((k + 1 for k, t in enumerate(row) if t in eos), len(row))
                out.append(row[:cut])
    finally:
        model.train(was_training)
    return out


def greedy_completions(model, tokenizer, prompts: list[str], max_new_tokens: int, batch_size: int = 64) -> list[str]:
    """Greedy continuations of text prompts (special tokens stripped); see :func:`greedy_ids`."""
    ids = greedy_ids(model, tokenizer, tokenizer(list(prompts))["input_ids"], max_new_tokens, batch_size)
    return tokenizer.batch_decode(ids, skip_special_tokens=True)


# -- validation during training, split over the ranks ---------------------------------------------------------------
@dataclass(frozen=True)
class Validation:
    """What greedy validation scores: ``rows(model, dataset)`` gives one dict per item, ``summary(rows)`` the logged
    ``{"val/…": value}``. :func:`validate` splits the items over the ranks of a distributed run."""

    dataset: object  # a datasets.Dataset
    rows: Callable
    summary: Callable


def shard_indices(n: int, rank: int, world: int) -> tuple[list[int], int]:
    """Rank ``rank``'s items of ``n`` (every ``world``-th), padded by repeating one so that every rank scores the same
    number (under ZeRO-3 all ranks must run the same generate calls), and how many of them are real."""
    if not 0 <= rank < world or n < 1:
        raise ValueError(f"need 0 <= rank < world and n >= 1, got rank {rank}, world {world}, n {n}")
    mine = list(range(rank, n, world))
    size = -(-n // world)
    return mine + [mine[-1] if mine else 0] * (size - len(mine)), len(mine)


def validate(validation: Validation, model) -> dict:
    """Every rank scores its share of the items (:func:`shard_indices`), the rows are gathered, and every rank
    computes the same summary: one validation's cost in all, and one decision (a new best, a checkpoint) on all."""
    import torch.distributed as dist

    distributed = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    indices, real = shard_indices(len(validation.dataset), rank, world)
    rows = validation.rows(model, validation.dataset.select(indices))[:real]
    log.info("validation: rank %d of %d scored %d of %d items", rank, world, real, len(validation.dataset))
    if distributed:
        parts = [None] * world
        dist.all_gather_object(parts, rows)
        rows = [row for part in parts for row in part]
    return validation.summary(rows)


def reward_rows(model, dataset, tokenizer, reward_fn, max_new_tokens: int) -> list[dict]:
    """The reward of each item's greedy completion (None, unscorable, counts as 0)."""
    columns = {k: dataset[k] for k in dataset.column_names if k != "prompt"}
    completions = greedy_completions(model, tokenizer, dataset["prompt"], max_new_tokens)
    return [{"reward": float(r) if r is not None else 0.0} for r in reward_fn(completions=completions, **columns)]


def reward_summary(rows: list[dict], prefix: str = "val/") -> dict:
    """Accuracy (reward ≥ 1 counts as correct), its SEM, and the mean reward."""
    rewards = [r["reward"] for r in rows]
    acc, sem = accuracy_sem([float(r >= 1.0) for r in rewards])
    return {f"{prefix}accuracy": acc, f"{prefix}sem": sem, f"{prefix}reward": sum(rewards) / max(len(rewards), 1)}
