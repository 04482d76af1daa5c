"""The package layout keeps its rules (docs/architecture.md), read from the source with
``ast``: no import cycle between modules (imports inside functions count), no module over
400 lines, no function over 80 lines, typer and rich only under ``bigganctl/cli/``, tqdm
only in ``bigganctl/progress.py`` (the Python API's ``progress=True``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from _layout_util import (MAX_FUNCTION_LINES, MAX_MODULE_LINES, PACKAGE, external_imports,  # noqa: F401
                          find_cycles, import_graph, imports_of, module_names)


# ----------------------------------------------------------------------------- the helpers can fail

def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / "pkg" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root / "pkg"


def test_helpers_find_a_cycle_hidden_in_a_function(tmp_path):
    pkg = _write(tmp_path, {
        "__init__.py": "",
        "a.py": "from . import b\n",
        "sub/__init__.py": "",
        "sub/c.py": "def f():\n    from ..a import x\n",
        "b.py": "def g():\n    from .sub import c\n",
    })
    graph = import_graph(pkg)
    assert graph["pkg.a"] == {"pkg.b"} and graph["pkg.b"] == {"pkg.sub.c"} and graph["pkg.sub.c"] == {"pkg.a"}
    assert find_cycles(graph) == [["pkg.a", "pkg.b", "pkg.sub.c"]]


def test_helpers_see_no_cycle_in_a_chain(tmp_path):
    pkg = _write(tmp_path, {"__init__.py": "", "a.py": "import pkg.b\n", "b.py": "import os\nfrom pkg import c\n",
                            "c.py": "x = 1\n"})
    graph = import_graph(pkg)
    assert graph["pkg.a"] == {"pkg.b"} and graph["pkg.b"] == {"pkg.c"}
    assert find_cycles(graph) == []


# ----------------------------------------------------------------------------- the rules

def test_no_import_cycle():
    cycles = find_cycles(import_graph(PACKAGE))
    assert cycles == [], "import cycles (imports inside functions count): " + "; ".join(
        " <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_and_function_sizes(path):
    n = len(path.read_text(encoding="utf-8").splitlines())
    assert n <= MAX_MODULE_LINES, f"{path.name}: {n} lines (at most {MAX_MODULE_LINES}); split it"
    long = [(f.name, f.end_lineno - f.lineno + 1) for f in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
            and f.end_lineno - f.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_typer_and_rich_only_in_the_cli_and_tqdm_only_in_progress():
    """The terminal belongs to the CLI; the one tqdm reporter (``progress=True`` in a
    notebook) lives beside the other progress shapes, in ``progress.py``."""
    cli = PACKAGE / "cli"
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        used = external_imports(path)
        if used & {"typer", "rich", "click"} and cli not in path.parents:
            wrong.append(f"{path.relative_to(PACKAGE)}: {sorted(used & {'typer', 'rich', 'click'})}")
        if "tqdm" in used and path != PACKAGE / "progress.py":
            wrong.append(f"{path.relative_to(PACKAGE)}: tqdm")
    assert not wrong, wrong


def test_the_core_never_imports_the_edges():
    """Arrows point inward: nothing outside cli/ imports cli/, nothing in the core imports api/
    (``__main__`` is the program's entry point, an edge itself)."""
    graph = import_graph(PACKAGE)
    graph.pop("bigganctl.__main__", None)
    bad = [(m, d) for m, deps in graph.items() for d in deps
           if (d.startswith("bigganctl.cli") and not m.startswith("bigganctl.cli"))
           or (d.startswith("bigganctl.api") and not m.startswith(("bigganctl.api", "bigganctl.cli")))]
    assert not bad, bad
