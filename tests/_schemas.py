"""JSON Schemas of the commands' ``--json`` output (docs/schema/), and the check every
in-process ``--json`` run of the test suite goes through (tests/conftest.py).

A schema lists each key a script may rely on as required: adding keys passes, renaming or
removing one fails. Commands: ``eval`` (fid|is|kid|all), ``sweep``, ``bench``, ``compare``,
``stats-info`` / ``-compute`` / ``-list`` / ``-pull``, ``models-*``, ``classes``, ``sample``, ``interp``.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "docs" / "schema"
_GROUPS = ("stats", "models")


def command_name(args: list[str]) -> str | None:
    """``["stats", "info", "R.npz", "--json"]`` -> ``"stats-info"``; ``["eval", "all", ...]`` -> ``"eval"``."""
    words = [a for a in args if not a.startswith("-")]
    if not words:
        return None
    if words[0] in _GROUPS and len(words) > 1:
        return f"{words[0]}-{words[1]}"
    return words[0]


@functools.cache
def schema(name: str) -> dict | None:
    p = SCHEMA_DIR / f"{name}.schema.json"
    return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else None


def validate(doc: Any, name: str) -> None:
    """AssertionError naming the path of the first mismatch; a command without a schema passes."""
    s = schema(name)
    if s is None:
        return
    errors = sorted(jsonschema.Draft202012Validator(s).iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        where = "/".join(map(str, e.absolute_path)) or "(top level)"
        raise AssertionError(f"`bigganctl {name.replace('-', ' ')} --json` does not match "
                             f"docs/schema/{name}.schema.json at {where}: {e.message}")


def check_output(args: list[str] | None, exit_code: int, stdout: str) -> None:
    """The check for one CLI run: with --json and a result (exit 0 or 3), stdout is exactly
    one JSON document matching the command's schema."""
    args = [str(a) for a in args or []]
    if "--json" not in args or "--help" in args or exit_code not in (0, 3) or not stdout.strip():
        return
    name = command_name(args)
    if name is None or schema(name) is None:
        return
    validate(json.loads(stdout), name)


#: the committed baseline of examples/ci: real `eval` / `bench` / ... output on random weights
BASELINE = Path(__file__).resolve().parents[1] / "examples" / "ci" / "baseline"


def baseline_doc(name: str) -> dict:
    """The committed baseline document ``name`` (eval, bench, ...) of examples/ci."""
    return json.loads((BASELINE / f"{name}.json").read_text())
