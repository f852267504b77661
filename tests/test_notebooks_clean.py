"""Notebook hygiene: committed stripped, kernelspec python3, one `parameters` cell with `scale`, no classes."""

import ast
import json

import pytest
from conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert [nb.name for nb in NOTEBOOKS][:1] == ["01_theorem.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_hygiene(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), "commit without outputs"
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    params = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, "exactly one cell tagged `parameters`"
    assert "scale" in {t.id for node in ast.walk(ast.parse("".join(params[0]["source"]))) for t in
                       getattr(node, "targets", [])}  # fmt: skip
    for cell in code:
        tree = ast.parse("".join(cell["source"]))
        assert not any(isinstance(n, ast.ClassDef) for n in ast.walk(tree)), "classes belong in paper_lib"
