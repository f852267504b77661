"""The README's training commands run as written (with fewer steps and a temporary root), on a CPU."""

import os
import re
import shlex
import subprocess
import sys

import pytest
from conftest import REPO

from paper_lib.rundir import is_finished


def _commands() -> list[list[str]]:
    text = (REPO / "README.md").read_text()
    lines = re.findall(r"^\.venv/bin/python -m paper_lib\.training (.+)$", text, flags=re.M)
    return [shlex.split(line) for line in lines]


def test_the_readme_has_training_commands():
    assert len(_commands()) >= 2


@pytest.mark.slow
@pytest.mark.parametrize("args", _commands(), ids=lambda a: a[a.index("--name") + 1])
def test_a_readme_training_command_runs(args, tmp_path):
    name = args[args.index("--name") + 1]
    cmd = [sys.executable, "-m", "paper_lib.training", *args, "--max_steps", "2", "--root", str(tmp_path)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert is_finished(tmp_path / name)
