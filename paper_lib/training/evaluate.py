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


def greedy_accuracy(model, tokenizer, dataset, reward_fn, max_new_tokens: int, prefix: str = "val/") -> dict:
    """Accuracy (reward ≥ 1 counts as correct), its SEM, and the mean reward of greedy completions on ``dataset``."""
    columns = {k: dataset[k] for k in dataset.column_names if k != "prompt"}
    completions = greedy_completions(model, tokenizer, dataset["prompt"], max_new_tokens)
    rewards = [float(r) if r is not None else 0.0 for r in reward_fn(completions=completions, **columns)]
    acc, sem = accuracy_sem([float(r >= 1.0) for r in rewards])
    return {f"{prefix}accuracy": acc, f"{prefix}sem": sem, f"{prefix}reward": sum(rewards) / max(len(rewards), 1)}
