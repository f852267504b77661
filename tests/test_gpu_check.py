"""`make gpu-check`: the script a GPU machine runs; here as its CPU dry run (every check needing CUDA says so)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from paper_lib.bench import gpu_check


def test_a_failing_check_is_reported_and_the_others_still_run(tmp_path, monkeypatch):
    def broken(out):
        raise AssertionError("weights differ")

    def absent(out):
        raise gpu_check.NotChecked("no CUDA device")

    monkeypatch.setitem(gpu_check.CHECKS, "stand-in", [("a", broken), ("b", absent), ("c", lambda out: "fine")])
    rows = gpu_check.run_checks("stand-in", tmp_path)
    assert [(r["check"], r["status"]) for r in rows] == [("a", "failed"), ("b", "not checked"), ("c", "held")]
    assert rows[0]["detail"].startswith("weights differ")


def test_without_cuda_it_refuses_unless_asked_for_a_dry_run(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_check, "_cuda", lambda: False)
    assert gpu_check.main(["--out", str(tmp_path)]) == 1 and not any(tmp_path.iterdir())


@pytest.mark.slow
def test_make_gpu_check_as_a_cpu_dry_run(tmp_path):
    venv = str(Path(sys.executable).parents[1])
    out = subprocess.run(["make", "--no-print-directory", "gpu-check", "ALLOW_CPU=1", "FORM=stand-in", f"VENV={venv}",
                          f"GPU_CHECK_OUT={tmp_path}"], cwd=REPO, capture_output=True, text=True, timeout=900,
                         env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    status = {r["check"]: r["status"] for r in summary["checks"]}
    assert status == {"gpu test tier": "not checked", "λ weights on the GPU": "not checked",
                      "tiny-model λ-GRPO steps": "held", "stand-in preset, train + evaluate": "held"}  # fmt: skip
    assert "| tiny-model λ-GRPO steps | held |" in (tmp_path / "summary.md").read_text()
