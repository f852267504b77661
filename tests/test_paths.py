"""The artifact registry and `python -m paper_lib.paths --check`."""

import subprocess
import sys

import pytest

from paper_lib.paths import ARTIFACTS, artifact_files, artifact_path, main, missing_artifacts, results_dir


def test_registry_paths(tmp_path):
    assert artifact_path("table_theorem", "smoke", tmp_path) == tmp_path / "tables/table_theorem.csv"
    assert [f.suffix for f in artifact_files("fig1_process_tree", "smoke", tmp_path)] == [".pdf", ".png"]
    assert results_dir("small").parts[-2:] == ("results", "small")


def test_bad_key_and_scale():
    with pytest.raises(KeyError, match="unknown artifact"):
        artifact_path("fig99")
    with pytest.raises(ValueError, match="scale must be one of"):
        results_dir("huge")


def test_check_lists_missing_then_passes(tmp_path, capsys):
    assert main(["--check", "--scale", "smoke", "--root", str(tmp_path)]) == 1
    assert "missing:" in capsys.readouterr().err
    for key in ARTIFACTS:
        for f in artifact_files(key, "smoke", tmp_path):
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text("x")
    assert missing_artifacts("smoke", tmp_path) == []
    assert main(["--check", "--scale", "smoke", "--root", str(tmp_path)]) == 0
    artifact_files("table_theorem", "smoke", tmp_path)[1].write_text("")  # an empty file is not an artifact
    assert main(["--check", "--scale", "smoke", "--root", str(tmp_path)]) == 1


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
