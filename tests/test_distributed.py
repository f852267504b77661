"""Slow tier: two CPU processes; a group's completions are split over both ranks, its λ weights must not be."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO

from paper_lib.trie import lambda_weights

pytestmark = pytest.mark.slow


def _pad(x, T):
    return torch.nn.functional.pad(x, (0, T - x.shape[1]))


def test_two_ranks_use_the_weights_of_the_whole_group(tmp_path):
    accelerate = Path(sys.executable).with_name("accelerate")
    cmd = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", str(REPO / "tests" / "distributed_weights.py"),
           str(tmp_path)]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    assert all(r["world"] == 2 for r in ranks)
    split_groups = 0
    for step, (a, b) in enumerate(zip(ranks[0]["records"], ranks[1]["records"], strict=True)):
        T = max(a["ids"].shape[1], b["ids"].shape[1])
        ids, mask = (torch.cat([_pad(a[k], T), _pad(b[k], T)]) for k in ("ids", "mask"))
        full = lambda_weights(ids.view(-1, 4, T), mask.view(-1, 4, T)).view(ids.shape)  # one place, whole groups
        n = a["ids"].shape[0]
        assert torch.equal(a["weights"], full[:n, : a["ids"].shape[1]]), f"rank 0, step {step}"
        assert torch.equal(b["weights"], full[n:, : b["ids"].shape[1]]), f"rank 1, step {step}"
        local = lambda_weights(b["ids"], b["mask"])  # what a rank would get from its own rows alone
        split_groups += not torch.equal(local, b["weights"])
    assert split_groups > 0  # the check has teeth: per-rank weights would have been wrong


def test_a_paper_preset_under_two_processes_writes_one_run_directory(tmp_path):
    """``accelerate launch -m paper_lib.paper_scale``, 2 CPU processes: gradient accumulation follows WORLD_SIZE (each
    step still trains 4 whole groups of 6), and rank 0 alone writes metrics, validation and the best checkpoint."""
    import gzip
    import json

    import pandas as pd

    sys.path.insert(0, str(REPO / "tests"))
    from paper_fixtures import build_mirror

    mirror = build_mirror(tmp_path / "mirror")
    accelerate = Path(sys.executable).with_name("accelerate")
    switches = [f"mirror={mirror}", "lora=false", "max_steps=2", "val_size=4", "eval_every=1"]
    cmd = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "paper_lib.paper_scale",
           "--preset", "downstream/qwen-1.5b_b0.04_lambda_grpo", "--root", str(tmp_path / "runs"),
           *(a for s in switches for a in ("--set", s))]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    run_dir = tmp_path / "runs" / "downstream" / "qwen-1.5b_b0.04_lambda_grpo"
    rows = [json.loads(line) for line in gzip.open(run_dir / "metrics.jsonl.gz", "rt")]
    assert [r["step"] for r in rows if "loss" in r] == [1, 2]  # once each, not once per rank
    assert [r["step"] for r in rows if "val/accuracy" in r] == [1, 2]
    groups = pd.read_parquet(run_dir / "groups.parquet")
    assert groups.groupby("step").size().tolist() == [4, 4]  # 4 prompts × G = 6 per optimizer step, over 2 ranks
    assert (run_dir / "best" / "score.json").is_file() and (run_dir / "train.rank1.log").is_file()
    for rank, log in enumerate(("train.log", "train.rank1.log")):  # validation is split, not repeated on each rank
        assert (run_dir / log).read_text().count(f"validation: rank {rank} of 2 scored 2 of 4 items") == 2
