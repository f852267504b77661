"""Does prefix overlap occur with a real pretrained model before any training? (§3.2 with SmolLM2-135M-Instruct)"""

from __future__ import annotations

import pandas as pd
import torch

from paper_lib.tree import GROUP_STAT_NAMES, group_statistics

__all__ = ["word_problems", "sampled_group_statistics"]


def word_problems(n: int, seed: int) -> list[str]:
    """GSM8K-style templated word problems from reasoning-gym (offline, seeded)."""
    import reasoning_gym

    return [item["question"] for item in reasoning_gym.create_dataset("gsm_symbolic", size=n, seed=seed)]


@torch.no_grad()
def _sample_group(model, tokenizer, question: str, G: int, temperature: float, max_new_tokens: int):
    messages = [{"role": "user", "content": question}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = model.generate(**prompt, do_sample=True, temperature=temperature, top_k=0, top_p=1.0,
                         num_return_sequences=G, max_new_tokens=max_new_tokens,
                         pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    ids = out[:, prompt["input_ids"].shape[1] :]
    # Right-padded completion mask: everything up to and including the first EOS.
    is_eos = ids == tokenizer.eos_token_id
    first = torch.where(is_eos.any(1), is_eos.float().argmax(1), torch.full((G,), ids.shape[1]))
    mask = (torch.arange(ids.shape[1]) <= first[:, None]).long()
    return ids, mask


def sampled_group_statistics(model, tokenizer, questions, sizes, temperature: float, max_new_tokens: int, seed: int):
    """One group per (question, G) sampled from the untrained model; B(G) statistics per group."""
    rows = []
    for G in sizes:
        for k, q in enumerate(questions):
            torch.manual_seed(seed + 1000 * G + k)
            stats = group_statistics(*_sample_group(model, tokenizer, q, G, temperature, max_new_tokens))
            rows.append({"G": G, "question": k} | {name: float(stats[name]) for name in GROUP_STAT_NAMES})
    return pd.DataFrame(rows)
