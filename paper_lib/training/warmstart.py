"""A short supervised warm start on worked solutions, so GRPO starts from a policy with non-zero group variance."""

from __future__ import annotations

import logging

import torch
from tqdm.auto import tqdm

__all__ = ["supervised_warm_start"]

log = logging.getLogger(__name__)


def _encode(tokenizer, prompts: list[str], solutions: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ``prompt + solution + EOS`` ids, attention mask, and a loss mask on the solution and EOS only."""
    rows, loss_rows = [], []
    for p, s in zip(prompts, solutions, strict=True):
        p_ids = tokenizer(p)["input_ids"]
        s_ids = tokenizer(s, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        rows.append(p_ids + s_ids)
        loss_rows.append([0] * len(p_ids) + [1] * len(s_ids))
    T = max(map(len, rows))
    ids = torch.full((len(rows), T), tokenizer.pad_token_id)
    attn, loss_mask = torch.zeros(len(rows), T, dtype=torch.long), torch.zeros(len(rows), T)
    for i, (r, m) in enumerate(zip(rows, loss_rows)):
        ids[i, : len(r)], attn[i, : len(r)] = torch.tensor(r), 1
        loss_mask[i, : len(m)] = torch.tensor(m, dtype=torch.float)
    return ids, attn, loss_mask


def supervised_warm_start(model, tokenizer, dataset, steps: int, lr: float, seed: int, batch_size: int = 32):
    """Fine-tune in place on ``dataset["prompt"] → dataset["solution"]`` with AdamW; deterministic given ``seed``.

    Returns the model and the per-step losses.
    """
    if steps <= 0:
        return model, []
    ids, attn, loss_mask = _encode(tokenizer, dataset["prompt"], dataset["solution"])
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    losses = []
    for _ in tqdm(range(steps), desc="warm start (SFT)", leave=False):
        rows = torch.randint(0, len(ids), (batch_size,), generator=gen)
        logits = model(input_ids=ids[rows], attention_mask=attn[rows]).logits[:, :-1]
        target, m = ids[rows][:, 1:], loss_mask[rows][:, 1:]
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), target, reduction="none")
        loss = (nll * m).sum() / m.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    log.info("warm start: %d steps, loss %.3f -> %.3f", steps, losses[0], losses[-1])
    return model, losses
