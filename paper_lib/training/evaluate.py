"""Greedy evaluation on held-out sets: accuracy ± SEM (ddof = 1), as the paper's Table 2 reports."""

from __future__ import annotations

import math

import torch

__all__ = ["greedy_completions", "greedy_accuracy", "accuracy_sem"]


def accuracy_sem(correct: list[float]) -> tuple[float, float]:
    r"""Mean and standard error with ddof = 1, $\sqrt{p(1-p)/(n-1)}$ for 0/1 scores (PAPER.md §4.1)."""
    n = len(correct)
    if n == 0:
        return math.nan, math.nan
    p = sum(correct) / n
    if n == 1:
        return p, math.nan
    var = sum((c - p) ** 2 for c in correct) / (n - 1)
    return p, math.sqrt(var / n)


@torch.no_grad()
def greedy_completions(model, tokenizer, prompts: list[str], max_new_tokens: int, batch_size: int = 64) -> list[str]:
    """Greedy continuations (special tokens stripped); the model's train/eval mode is restored afterwards."""
    was_training = model.training
    model.eval()
    out = []
    try:
        for start in range(0, len(prompts), batch_size):
            batch = tokenizer(prompts[start : start + batch_size], return_tensors="pt", padding=True)
            batch = {k: v.to(model.device) for k, v in batch.items()}
            ids = model.generate(**batch, do_sample=False, max_new_tokens=max_new_tokens,
                                 pad_token_id=tokenizer.pad_token_id)  # fmt: skip
            out += tokenizer.batch_decode(ids[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)
    finally:
        model.train(was_training)
    return out


def greedy_accuracy(model, tokenizer, dataset, reward_fn, max_new_tokens: int, prefix: str = "val/") -> dict:
    """Accuracy (reward ≥ 1 counts as correct), its SEM, and the mean reward of greedy completions on ``dataset``."""
    columns = {k: dataset[k] for k in dataset.column_names if k != "prompt"}
    completions = greedy_completions(model, tokenizer, dataset["prompt"], max_new_tokens)
    rewards = [float(r) if r is not None else 0.0 for r in reward_fn(completions=completions, **columns)]
    acc, sem = accuracy_sem([float(r >= 1.0) for r in rewards])
    return {f"{prefix}accuracy": acc, f"{prefix}sem": sem, f"{prefix}reward": sum(rewards) / max(len(rewards), 1)}
