"""The package's shape: no import circles (counting imports inside functions), no part importing a higher one, the
paper's objects free of plotting/TRL/transformers, and readers of logged data that load no training stack."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

PACKAGE = REPO / "paper_lib"
# Floors, bottom up (README "Layout"): a module may import its own floor or lower ones only.
FLOORS = {"objects": 0, "trainer": 1, "training": 2, "paper_scale": 3, "experiments": 4, "analysis": 5, "figures": 6,
          "bench": 7}  # fmt: skip
OBJECTS = ("trie", "tree", "prm", "losses", "reference", "groups")


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(path: Path, modules) -> set[str]:
    """Every paper_lib module ``path`` imports, at any depth of its code (``from pkg import mod`` counts as mod)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                found.add(f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    own = lambda m, d: d in modules and d not in (m, "paper_lib")  # noqa: E731
    return {m: {d for d in _imports(p, modules) if own(m, d)} for m, p in modules.items()}


def _floor(module: str) -> int:
    part = module.split(".")[1] if "." in module else "objects"
    return FLOORS.get(part, FLOORS["objects"])  # top-level modules: the objects, paths, rundir, vocab


def _third_party(path: Path) -> set[str]:
    tops = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            tops |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            tops.add(node.module.split(".")[0])
    return tops


def test_no_import_circles():
    graph, state, circles = _graph(), {}, []

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == "open":
                circles.append(" -> ".join(stack[stack.index(dep) :] + [dep]))
            elif dep not in state:
                visit(dep, stack)
        stack.pop()
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
    assert not circles, circles


def test_no_part_imports_a_higher_one():
    upward = [f"{m} -> {d}" for m, deps in _graph().items() for d in deps if _floor(d) > _floor(m)]
    assert not upward, upward


def test_a_few_modules_at_the_top_and_the_parts_as_subpackages():
    top = [p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"]
    parts = [p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()]
    assert len(top) <= 12, sorted(top)
    assert set(parts) == set(FLOORS) - {"objects", "trainer"}, parts


def test_the_papers_objects_need_only_torch():
    for name in OBJECTS:
        imported = _third_party(PACKAGE / f"{name}.py")
        assert not imported & {"matplotlib", "trl", "transformers"}, (name, imported)
        assert not {d for d in _graph()[f"paper_lib.{name}"] if _floor(d) > 0}, name


@pytest.mark.parametrize("module", ["paper_lib.rundir", "paper_lib.analysis.collect", "paper_lib.analysis.tables",
                                    "paper_lib.analysis.report"])  # fmt: skip
def test_reading_logs_loads_no_training_stack(module):
    code = (f"import sys; import {module}; "
            "print(sorted(m for m in ('torch', 'transformers', 'trl', 'matplotlib', 'paper_lib.training.runs') "
            "if m in sys.modules))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_no_document_points_outside_the_repository():
    """The paper digest the code cites lives in docs/paper.md; no file cites a document the repository lacks."""
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True).stdout.split()
    outside = [n + ".md" for n in ("PAPER", "DESIGN", "STACK", "LAYOUT", "ANCHORS", "STYLE")] + ["../" + "shared"]
    hits = [f for f in tracked if f.endswith((".py", ".md", ".ipynb", ".txt", ".toml", ".yml", ".yaml"))
            and not f.startswith("results/") and any(o in (REPO / f).read_text() for o in outside)]  # fmt: skip
    assert hits == []
    cited = {m for f in tracked if f.endswith((".py", ".md", ".ipynb")) and not f.startswith("results/")
             for m in re.findall(r"docs/paper\.md §(\d+)", (REPO / f).read_text())}  # fmt: skip
    digest = (REPO / "docs" / "paper.md").read_text()
    assert cited and all(re.search(rf"^## {n}\. ", digest, re.M) for n in cited), cited
