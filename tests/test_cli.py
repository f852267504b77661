"""Command lines as a user meets them: --help explains every option; bad input is one line, --debug the traceback."""

import subprocess
import sys

import pytest
from conftest import REPO

from paper_lib.cli import run_main
from paper_lib.paper_scale import recipe as paper_cli
from paper_lib.training import cli as training_cli


def test_bad_input_is_one_line_naming_the_problem(capsys, tmp_path):
    assert run_main(training_cli.main, ["--name", "x", "--batch_size", "0", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "error: RunConfig.batch_size: must be None or >= group_size (8), got 0" and len(err) == 2
    assert run_main(paper_cli.main, ["--preset", "downstream/nope"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown paper preset 'downstream/nope'")
    with pytest.raises(ValueError, match="batch_size"):  # --debug: the exception itself
        run_main(training_cli.main, ["--name", "x", "--batch_size", "0", "--debug", "--root", str(tmp_path)])
    assert not (tmp_path / "x").exists()


def test_help_explains_every_option():
    out = subprocess.run([sys.executable, "-m", "paper_lib.training", "--help"], cwd=REPO, capture_output=True,
                         text=True, env={"HF_HUB_OFFLINE": "1", "PATH": ""}, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    options = [line.split()[0] for line in out.stdout.splitlines() if line.startswith("  --")]
    assert len(options) >= 30 and "--config" in out.stdout
    blocks = out.stdout.split("\n  --")[1:]
    undocumented = [b.split()[0] for b in blocks if "(default:" not in b or len(b.split()) < 4]
    assert undocumented == []
