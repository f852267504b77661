"""The code and the notebooks pass ruff (the rules in pyproject.toml)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO


def test_ruff_check():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed in this environment")
    out = subprocess.run([ruff, "check", "paper_lib", "tests", "notebooks"], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout
