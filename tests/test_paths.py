"""The artifact registry and `python -m paper_lib.paths --check`."""

import fcntl
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from paper_lib.paths import (
    ARTIFACTS,
    NOTEBOOK_OF,
    RUN_READERS,
    artifact_files,
    artifact_path,
    forget_execution,
    main,
    missing_artifacts,
    record_execution,
    results_dir,
    stale_artifacts,
)


def test_registry_paths(tmp_path):
    assert artifact_path("table_theorem", "smoke", tmp_path) == tmp_path / "tables/table_theorem.csv"
    assert [f.suffix for f in artifact_files("fig1_process_tree", "smoke", tmp_path)] == [".pdf", ".png"]
    assert results_dir("small").parts[-2:] == ("results", "small")


def test_bad_key_and_scale():
    with pytest.raises(KeyError, match="unknown artifact"):
        artifact_path("fig99")
    with pytest.raises(ValueError, match="scale must be one of"):
        results_dir("huge")


def _write_every_artifact(root, text="x"):
    for key in ARTIFACTS:
        for f in artifact_files(key, "smoke", root):
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(text)


def _record_every_notebook(root):
    for notebook in dict.fromkeys(NOTEBOOK_OF.values()):  # in order: the report's record last
        record_execution(notebook, "smoke", root)


def test_the_design_tables_are_required_at_the_scales_that_run_the_design_only(tmp_path):
    """The paper scale has no sums design runs: notebook 04 there writes no design tables, and its record and
    ``--check`` do not ask for them (the CI failure of the paper-scale dry run); smoke and small do."""
    for scale in ("smoke", "paper"):
        for key in ARTIFACTS:
            if NOTEBOOK_OF[key] == "04_training" and not key.startswith("table_design"):
                for f in artifact_files(key, scale, tmp_path / scale):
                    f.parent.mkdir(parents=True, exist_ok=True)
                    f.write_text("x")
    assert record_execution("04_training", "paper", tmp_path / "paper").is_file()
    with pytest.raises(FileNotFoundError, match="table_design_pilots"):
        record_execution("04_training", "smoke", tmp_path / "smoke")
    assert not [f for f in missing_artifacts("paper", tmp_path / "paper") if "table_design" in f.name]
    names = [f.name for f in missing_artifacts("smoke", tmp_path / "smoke") if "table_design" in f.name]
    assert names == [f"table_design_{t}.{ext}" for t in ("pilots", "power") for ext in ("csv", "md")]


def test_check_lists_missing_then_passes(tmp_path, capsys):
    assert main(["--check", "--scale", "smoke", "--root", str(tmp_path)]) == 1
    assert "missing:" in capsys.readouterr().err
    _write_every_artifact(tmp_path)
    assert missing_artifacts("smoke", tmp_path) == []
    _record_every_notebook(tmp_path)
    assert main(["--check", "--scale", "smoke", "--root", str(tmp_path)]) == 0
    artifact_files("table_theorem", "smoke", tmp_path)[1].write_text("")  # an empty file is not an artifact
    assert main(["--check", "--scale", "smoke", "--root", str(tmp_path)]) == 1


def test_artifacts_no_completed_execution_wrote_are_stale(tmp_path, capsys):
    """Files alone do not pass --check: a notebook that failed halfway leaves new and old artifacts side by side."""
    _write_every_artifact(tmp_path)
    assert main(["--check", "--scale", "smoke", "--root", str(tmp_path)]) == 1  # no execution vouches for them
    assert "has not completed" in capsys.readouterr().err
    _record_every_notebook(tmp_path)
    assert stale_artifacts("smoke", tmp_path) == []
    forget_execution("02_toy_tree_task", "smoke", tmp_path)  # 02 starts again (make drops its record) ...
    artifact_path("table1_toy", "smoke", tmp_path).write_text("new")  # ... writes one table, then a cell fails
    stale = {f.name: why for f, why in stale_artifacts("smoke", tmp_path)}
    assert "table1_toy.csv" in stale and "fig_target_freq.pdf" in stale  # the new one and the old ones
    assert {NOTEBOOK_OF[k] for k in ARTIFACTS if ARTIFACTS[k].split("/")[-1] in stale} == {"02_toy_tree_task",
                                                                                          "07_report"}  # fmt: skip
    assert main(["--check", "--scale", "smoke", "--root", str(tmp_path)]) == 1


def test_an_artifact_is_stale_when_its_notebook_or_its_runs_changed(tmp_path):
    _write_every_artifact(tmp_path)
    _record_every_notebook(tmp_path)
    artifact_path("table_theorem", "smoke", tmp_path).write_text("edited by hand")
    assert [(f.name, why) for f, why in stale_artifacts("smoke", tmp_path)] == [
        ("table_theorem.csv", "not the file 01_theorem wrote")]  # fmt: skip
    record_execution("01_theorem", "smoke", tmp_path)  # 01 ran again: the report quoting its old record is stale
    reasons = {why for _, why in stale_artifacts("smoke", tmp_path)}
    assert reasons == {"what 07_report reads changed since it wrote this"}
    record_execution("07_report", "smoke", tmp_path)
    run = tmp_path / "runs" / "toy" / "a"
    run.mkdir(parents=True)
    (run / "manifest.json").write_text('{"status": "finished"}')  # a run landed after the notebooks ran
    readers = {NOTEBOOK_OF[k] for k in ARTIFACTS for f, _ in stale_artifacts("smoke", tmp_path)
               if f.name == ARTIFACTS[k].split("/")[-1]}  # fmt: skip
    assert readers == set(RUN_READERS)
    nb_dir = tmp_path / "nbs"
    shutil.copytree(REPO / "notebooks", nb_dir)
    (nb_dir / "06_overhead.ipynb").write_text((nb_dir / "06_overhead.ipynb").read_text() + " ")
    assert any("06_overhead.ipynb changed" in why for _, why in stale_artifacts("smoke", tmp_path, nb_dir))


def test_the_makefile_and_the_registry_agree_on_which_notebooks_read_the_runs():
    line = next(x for x in (REPO / "Makefile").read_text().splitlines() if x.startswith("RUN_READERS :="))
    numbers = re.search(r"foreach n,([\d ]+),", line).group(1).split()
    assert numbers == [nb[:2] for nb in RUN_READERS]


def test_a_second_make_reproduce_refuses_while_one_runs(tmp_path):
    """Two `make reproduce` on one results folder would interleave their runs' and notebooks' writes: the second
    refuses at once, naming the lock, and writes nothing."""
    results = tmp_path / "results"
    results.mkdir()
    with open(results / ".reproduce.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as the first make's flock holds it
        venv = str(Path(sys.executable).parents[1])
        out = subprocess.run(["make", "--no-print-directory", "reproduce", "SCALE=smoke", f"VENV={venv}",
                              f"RESULTS={results}", f"EXEC={tmp_path}/executed"], cwd=REPO, capture_output=True,
                             text=True, timeout=120)  # fmt: skip
    assert out.returncode != 0 and "another make reproduce is writing" in out.stderr, out.stdout + out.stderr
    assert [p.name for p in results.iterdir()] == [".reproduce.lock"] and not (tmp_path / "executed").exists()


def test_check_as_a_module_exits_nonzero(tmp_path):
    cmd = [sys.executable, "-m", "paper_lib.paths", "--check", "--scale", "smoke", "--root", str(tmp_path)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 1 and "table_theorem.csv" in out.stderr


def test_an_installed_package_writes_results_under_the_working_directory(monkeypatch, tmp_path):
    """Outside a checkout (pip install .), results/ and .cache/ go to the working directory, not site-packages;
    PAPER_LIB_ROOT overrides both."""
    from paper_lib import paths

    assert paths.results_dir("small") == paths.REPO_ROOT / "results" / "small"  # in this checkout
    monkeypatch.setattr(paths, "REPO_ROOT", tmp_path / "site-packages")  # no pyproject.toml there
    monkeypatch.chdir(tmp_path)
    assert paths.results_dir("small") == tmp_path / "results" / "small"
    monkeypatch.setenv("PAPER_LIB_ROOT", str(tmp_path / "elsewhere"))
    assert paths.results_dir("smoke") == tmp_path / "elsewhere" / "results" / "smoke"
