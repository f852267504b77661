"""environment.yml (for conda users; conda cannot run here) must pin exactly what requirements.txt pins."""

import re

import yaml

PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s#]+)")


def _pins(lines):
    return {m[1].lower().replace("_", "-"): m[2] for line in lines if (m := PIN.match(line.strip()))}


def test_environment_yml_mirrors_requirements(repo):
    requirements = _pins((repo / "requirements.txt").read_text().splitlines())
    env = yaml.safe_load((repo / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert _pins(pip_section) == requirements
    assert "python=3.11" in env["dependencies"]


def test_every_requirement_is_pinned_exactly(repo):
    lines = [x.strip() for x in (repo / "requirements.txt").read_text().splitlines()]
    entries = [x for x in lines if x and not x.startswith("#")]
    assert entries and all(PIN.match(x) for x in entries), [x for x in entries if not PIN.match(x)]
    assert "torch" in _pins(entries)  # pinned in the same install command as trl (the CUDA-torch trap)


def test_pyproject_dependencies_are_in_step_with_the_pins(repo):
    """`pip install .` declares what requirements.txt pins: every pinned package is declared (runtime or an extra),
    and every declared range admits the pin (requirements-gpu.txt's for the gpu extra)."""
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    cpu = _pins((repo / "requirements.txt").read_text().splitlines())
    gpu = _pins((repo / "requirements-gpu.txt").read_text().splitlines())
    groups = {"runtime": project["dependencies"], **project["optional-dependencies"]}
    declared = {}
    for group, specs in groups.items():
        for spec in specs:
            req = Requirement(spec)
            name = req.name.lower().replace("_", "-")
            pins = gpu if group == "gpu" else cpu
            assert name in pins, f"{name} ({group}) is not pinned in its requirements file"
            assert req.specifier.contains(pins[name]), f"{spec} does not admit the pin {pins[name]}"
            declared[name] = group
    assert set(cpu) <= set(declared), f"pinned but not declared: {sorted(set(cpu) - set(declared))}"


def test_building_the_package_leaves_nothing_in_the_source_tree(repo, tmp_path):
    """`pip install .` builds a wheel of every module of paper_lib and leaves no build/ or *.egg-info behind."""
    import shutil
    import subprocess
    import sys
    import zipfile

    src = tmp_path / "src"
    shutil.copytree(repo / "paper_lib", src / "paper_lib", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(repo / name, src / name)
    before = sorted(p.name for p in src.iterdir())
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                          str(tmp_path / "wheel"), str(src)], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert sorted(p.name for p in src.iterdir()) == before  # no build/, no egg-info
    (wheel,) = (tmp_path / "wheel").glob("paper_lib-*.whl")
    modules = {n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".py")}
    assert modules == {p.relative_to(src).as_posix() for p in (src / "paper_lib").rglob("*.py")}
