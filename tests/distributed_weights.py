"""Run under `accelerate launch --num_processes 2`: each rank records the λ weights it trains with (see test)."""

import os
import sys

import torch
from datasets import Dataset

from paper_lib.trainer import LambdaGRPOConfig, LambdaGRPOTrainer
from paper_lib.training.models import char_tokenizer, tiny_qwen2


def reward(completions, **kwargs):
    return [float(len(c) % 3) for c in completions]


def main(out_dir: str) -> None:
    tokenizer = char_tokenizer("0123456789+-=,")
    data = Dataset.from_list([{"prompt": f"{a}+{b}="} for a in range(9) for b in range(9)])
    args = LambdaGRPOConfig(output_dir=os.path.join(out_dir, "ckpt"), use_cpu=True, report_to="none",
                            save_strategy="no", disable_tqdm=True, num_generations=4, per_device_train_batch_size=2,
                            max_completion_length=8, max_steps=3, seed=0, learning_rate=1e-3)  # fmt: skip
    trainer = LambdaGRPOTrainer(model=tiny_qwen2(tokenizer, seed=0), reward_funcs=reward, args=args,
                                train_dataset=data, processing_class=tokenizer)  # fmt: skip
    records = []
    original = trainer._gathered_weights_and_stats

    def recording(ids, mask):
        weights, stats = original(ids, mask)
        records.append({"ids": ids.clone(), "mask": mask.clone(), "weights": weights.clone()})
        return weights, stats

    trainer._gathered_weights_and_stats = recording
    trainer.train()
    rank = trainer.accelerator.process_index
    torch.save(
        {"records": records, "world": trainer.accelerator.num_processes}, os.path.join(out_dir, f"rank{rank}.pt")
    )


if __name__ == "__main__":
    main(sys.argv[1])
