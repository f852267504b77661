"""Does prefix overlap occur with a real pretrained model before any training? (§3.2 with SmolLM2-135M-Instruct)

:func:`sampled_group_statistics` samples one group per (question, G) and returns B(G)'s statistics per group and,
per group, where in the completions λ-GRPO's weights bite: the share of tokens with weight < 1 (|λ| ≥ 2) in each
tenth of the completion's length (:func:`shared_position_profile`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from paper_lib.tree import GROUP_STAT_NAMES, group_statistics
from paper_lib.trie import process_set_sizes

__all__ = [
    "POSITION_BINS",
    "SAMPLE",
    "word_problems",
    "sampled_group_statistics",
    "shared_position_profile",
    "sample_to",
]

POSITION_BINS = 10


def word_problems(n: int, seed: int) -> list[str]:
    """GSM8K-style templated word problems from reasoning-gym (offline, seeded)."""
    import reasoning_gym

    return [item["question"] for item in reasoning_gym.create_dataset("gsm_symbolic", size=n, seed=seed)]


def shared_position_profile(completion_ids: torch.Tensor, completion_mask: torch.Tensor,
                            bins: int = POSITION_BINS) -> list[float]:  # fmt: skip
    """Per tenth (``bins``) of a completion's length, the share of its tokens that λ-GRPO down-weights (|λ| ≥ 2),
    pooled over the group's completions; NaN for a bin no token falls in. A token at position t of a completion of
    length L falls in bin ⌊bins · t / L⌋."""
    sizes = process_set_sizes(completion_ids, completion_mask)
    mask = completion_mask.bool()
    lengths = mask.sum(-1, keepdim=True).clamp(min=1)
    position = torch.arange(mask.shape[-1]).expand_as(mask)
    which = (bins * position // lengths).clamp(max=bins - 1)
    shared, total = torch.zeros(bins), torch.zeros(bins)
    total.index_add_(0, which[mask], torch.ones(int(mask.sum())))
    shared.index_add_(0, which[mask], (sizes[mask] >= 2).float())
    return (shared / total).tolist()  # 0/0 -> NaN


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
    """One group per (question, G) sampled from the untrained model: B(G) statistics per group, its mean completion
    length, and the shared-token share per tenth of the completion (columns ``shared_pos0`` … ``shared_pos9``)."""
    from tqdm.auto import tqdm

    rows = []
    for G in sizes:
        for k, q in enumerate(tqdm(questions, desc=f"SmolLM2 groups, G={G}", leave=False)):
            torch.manual_seed(seed + 1000 * G + k)
            ids, mask = _sample_group(model, tokenizer, q, G, temperature, max_new_tokens)
            stats = group_statistics(ids, mask)
            profile = shared_position_profile(ids, mask)
            rows.append({"G": G, "question": k} | {name: float(stats[name]) for name in GROUP_STAT_NAMES}
                        | {"length_mean": float(mask.sum(-1).double().mean())}
                        | {f"shared_pos{b}": v for b, v in enumerate(profile)})  # fmt: skip
    return pd.DataFrame(rows)


# The committed sample (results/<scale>/runs/smollm2_groups/): enough groups per G for the §3.2 statistics to have
# usable intervals, long enough completions for depth to mean something, the authors' sampling temperature.
SAMPLE = {"small": {"questions": 50, "sizes": (6, 36), "max_new_tokens": 128, "temperature": 0.75, "seed": 0},
          "smoke": {"questions": 2, "sizes": (6,), "max_new_tokens": 8, "temperature": 0.75, "seed": 0}}  # fmt: skip


def sample_to(run_dir, scale: str) -> Path:
    """Sample the groups of :data:`SAMPLE` ``[scale]`` from SmolLM2-135M-Instruct into ``run_dir/groups.csv`` with a
    manifest (config, versions, git state, CPU, wall time); a finished sample is left as it is."""
    import time

    from paper_lib.rundir import is_finished, write_json
    from paper_lib.training import provenance
    from paper_lib.training.smollm2 import smollm2_135m_instruct

    if scale not in SAMPLE:
        raise ValueError(f"no SmolLM2 group sample is planned at scale {scale!r}; planned: {sorted(SAMPLE)}")
    run_dir = Path(run_dir)
    if is_finished(run_dir):
        return run_dir / "groups.csv"
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = SAMPLE[scale]
    start, started = time.perf_counter(), provenance.utc_now()
    model, tokenizer = smollm2_135m_instruct()
    questions = word_problems(cfg["questions"], seed=cfg["seed"])
    frame = sampled_group_statistics(model, tokenizer, questions, cfg["sizes"], cfg["temperature"],
                                     cfg["max_new_tokens"], cfg["seed"])  # fmt: skip
    frame.to_csv(run_dir / "groups.csv", index=False, float_format="%.6g")
    write_json(run_dir / "manifest.json", {"config": cfg, "scale": scale, "status": "finished", "started": started,
                                           "finished": provenance.utc_now(), "git": provenance.git_state(),
                                           "versions": provenance.versions(), "device": provenance.device_name(),
                                           "wall_time_s": time.perf_counter() - start})  # fmt: skip
    return run_dir / "groups.csv"


def main(argv=None) -> int:
    import argparse

    from paper_lib.experiments.plan import runs_root
    from paper_lib.training import provenance

    parser = argparse.ArgumentParser(description="Sample §3.2's groups from SmolLM2-135M-Instruct (offline).")
    parser.add_argument("--scale", default="small", choices=sorted(SAMPLE))
    parser.add_argument("--root", default=None, help="results folder (default results/<scale>)")
    args = parser.parse_args(argv)
    provenance.pin_cpu_kernels()  # as the runs: the same groups on AVX2 and AVX-512 machines
    print(sample_to(runs_root(args.scale, args.root) / "smollm2_groups", args.scale))
    return 0


if __name__ == "__main__":
    import sys

    from paper_lib.cli import run_main

    sys.exit(run_main(main))
