"""Slow tier: every notebook executes headless at SCALE=smoke; a failing notebook leaves no finished copy."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from paper_lib.paths import ARTIFACTS, NOTEBOOK_OF, artifact_files, expected_artifacts

pytestmark = pytest.mark.slow
VENV = str(Path(sys.executable).parents[1])


def _make(*args, cwd=REPO):
    env = {**os.environ, "VENV": VENV}
    return subprocess.run(["make", "--no-print-directory", *args, f"VENV={VENV}"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=1200)  # fmt: skip


def test_reproduce_smoke_writes_every_artifact(tmp_path):
    out = _make("reproduce", "SCALE=smoke", f"EXEC={tmp_path}/executed", f"RESULTS={tmp_path}/results")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    for key in expected_artifacts():
        assert all(f.stat().st_size > 0 for f in artifact_files(key, "smoke", tmp_path / "results")), key
    executed = sorted(p.name for p in (tmp_path / "executed").iterdir())
    assert executed == sorted(p.name for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    drawing = {NOTEBOOK_OF[k] for k, path in ARTIFACTS.items() if path.endswith(".pdf")}
    for name in executed:  # figures and tables show inline in the executed copies, as in JupyterLab
        cells = json.loads((tmp_path / "executed" / name).read_text())["cells"]
        kinds = {k for c in cells for o in c.get("outputs", []) for k in o.get("data", {})}
        assert "text/markdown" in kinds and ("image/png" in kinds or name[:-6] not in drawing), (name, kinds)


def test_a_failing_cell_fails_make_and_leaves_no_finished_copy(tmp_path):
    nb_dir = tmp_path / "nbs"
    nb_dir.mkdir()
    cells = [
        {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": "scale = 'small'\nresults_dir = None",
         "outputs": [], "execution_count": None},
        {"cell_type": "code", "metadata": {}, "source": "raise RuntimeError('boom')", "outputs": [],
         "execution_count": None},
    ]  # fmt: skip
    nb = {"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
          "language": "python"}}, "nbformat": 4, "nbformat_minor": 4}  # fmt: skip
    (nb_dir / "01_fail.ipynb").write_text(json.dumps(nb))
    out = _make("reproduce", "SCALE=smoke", f"NB_DIR={nb_dir}", f"EXEC={tmp_path}/executed",
                f"RESULTS={tmp_path}/results")  # fmt: skip
    assert out.returncode != 0 and "boom" in out.stdout + out.stderr
    assert not (tmp_path / "executed" / "01_fail.ipynb").exists()


def test_a_cpu_dry_run_of_the_paper_scale(tmp_path):
    """``make`` at SCALE=paper on a local mirror of offline stand-ins, short runs, no GPU (ALLOW_CPU=1): every paper
    preset trains through the real run loop, the trained runs are evaluated on the five benchmarks, and notebooks
    02–05 and 07 turn the paper-scale run directories into their tables (Table 2 per model)."""
    sys.path.insert(0, str(REPO / "tests"))
    from paper_fixtures import build_mirror

    mirror = build_mirror(tmp_path / "mirror")
    executed = [f"{tmp_path}/executed/{nb}.ipynb" for nb in ("02_toy_tree_task", "03_process_sets", "04_training",
                                                              "05_downstream", "07_report")]  # fmt: skip
    (tmp_path / "executed").mkdir()
    for other in ("01_theorem", "06_overhead"):  # the report runs after every notebook; these two are not about
        (tmp_path / "executed" / f"{other}.ipynb").touch()  # the paper's runs, so they count as done here
    # IN_PROCESS=1: the 130 runs in one process (a process per run, the GPU default, would add ~15 min of imports;
    # test_paper_recipe.py checks that path)
    sets = f"SET=mirror={mirror} lora=false max_steps=2 val_size=4 eval_every=1"
    out = _make(*executed, "SCALE=paper", "ALLOW_CPU=1", "IN_PROCESS=1", f"EXEC={tmp_path}/executed",
                f"RESULTS={tmp_path}/results", sets)  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    results = tmp_path / "results"
    summaries = sorted((results / "runs" / "training").glob("*/benchmarks/summary.json"))
    assert len(summaries) == 8 + 2  # the 8 downstream runs and the two base models
    table2 = (results / "tables" / "table2_downstream.md").read_text()
    assert table2.count("| qwen-1.5b |") == 5 and table2.count("| llama-1b |") == 5
    report = (results / "REPORT.md").read_text()
    assert "Table 2 (llama-1b, β=0.04)" in report and "one run per cell" in report
