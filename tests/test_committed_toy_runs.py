"""The committed toy runs (results/small) train the policy they sample, and say where they came from."""

import math

import pytest
from conftest import REPO

from paper_lib.experiments.plan import TOY_EXPERIMENTS
from paper_lib.rundir import read_json, read_jsonl

RUNS = sorted(p.parent for exp in TOY_EXPERIMENTS for p in (REPO / "results/small/runs" / exp).glob("*/manifest.json"))


def test_there_are_committed_toy_runs():
    assert len(RUNS) >= 100, "results/small/runs holds too few toy runs"


@pytest.mark.parametrize("run_dir", RUNS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_committed_toy_run(run_dir):
    manifest, config = read_json(run_dir / "manifest.json"), read_json(run_dir / "config.json")
    assert manifest["status"] == "finished" and manifest["git"]["dirty"] is False  # from a clean commit
    kind, rest = manifest["device"].split(": ", 1)
    assert kind == "cuda" or rest.rsplit(",", 1)[0] not in ("x86_64", "aarch64", "")  # the CPU model, not its arch
    entropy = [r["entropy"] for r in read_jsonl(run_dir / "metrics.jsonl") if "entropy" in r]
    assert len(entropy) == config["max_steps"]
    if config["toy_mask"] == "policy":
        assert max(entropy) <= math.log(2), "the trained policy must be the sampled one, over {L, R}"
    else:  # the labelled ablation: the loss differentiates the full softmax
        assert run_dir.parent.name == "toy_ablation" and config["toy_mask"] == "sampling_only"
    assert (run_dir / "toy_target.json").is_file()
