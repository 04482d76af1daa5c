"""The JSON schemas of docs/schema/: every command's document has one, each is a valid JSON
schema, renamed or removed keys are refused and additions accepted, and every `--json`
run of the suite is checked against its schema."""

from __future__ import annotations

import json

import pytest

from _schemas import baseline_doc as _doc, command_name, validate


def test_schema_names():
    assert command_name(["eval", "all", "--n", "10", "--json"]) == "eval"
    assert command_name(["stats", "info", "R.npz", "--json"]) == "stats-info"
    assert command_name(["models", "list", "--json"]) == "models-list"


def test_schemas_refuse_renamed_or_removed_keys_and_accept_additions():
    doc = _doc("eval")
    validate({**doc, "something_new": 1}, "eval")
    renamed = {("FID" if k == "fid" else k): v for k, v in doc.items()}
    with pytest.raises(AssertionError, match="'fid' is a required property"):
        validate(renamed, "eval")
    bench = _doc("bench")
    del bench["system"]["isa"]
    with pytest.raises(AssertionError, match="system"):
        validate(bench, "bench")
    with pytest.raises(AssertionError):
        validate({**doc, "n": "ten"}, "eval")


def test_every_schema_is_valid_json_schema():
    import jsonschema

    from _schemas import SCHEMA_DIR

    names = sorted(p.name for p in SCHEMA_DIR.glob("*.schema.json"))
    assert {"eval.schema.json", "sweep.schema.json", "bench.schema.json", "stats-info.schema.json",
            "compare.schema.json"} <= set(names)
    for n in names:
        jsonschema.Draft202012Validator.check_schema(json.loads((SCHEMA_DIR / n).read_text()))


def test_every_json_run_of_the_suite_is_checked(cli, monkeypatch):
    """The conftest hook: a --json run whose output misses a required key fails the test."""
    import _schemas

    strict = {"type": "object", "required": ["a_key_nobody_prints"]}
    monkeypatch.setattr(_schemas, "schema", lambda name: strict if name == "classes" else None)
    with pytest.raises(AssertionError, match="a_key_nobody_prints"):
        cli("classes", "goldfish", "--json")
    assert cli("classes", "goldfish").exit_code == 0                 # no --json: nothing to check
