"""Errors of the core name the Python parameter; the CLI shows the flag that sets it (the
one table: ``bigganctl.cli.options.PARAM_FLAGS``)."""

from __future__ import annotations


import pytest

import bigganctl
from bigganctl.cli.options import cli_flag
from bigganctl.errors import UsageError


def test_python_sample_names_psi(monkeypatch):
    import bigganctl.api._shared as common

    monkeypatch.setattr(common, "open_generator", lambda *a, **k: pytest.fail("must not load"))
    with pytest.raises(UsageError) as e:
        bigganctl.sample(psi=2)
    assert e.value.param == "psi"
    assert str(e.value).startswith("psi: ") and "--trunc" not in str(e.value)


def test_cli_sample_names_trunc(cli):
    r = cli("sample", "--trunc", "2", "--weights", "random")
    assert r.exit_code == 2
    assert "--trunc: psi must be in (0, 1]" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("args, flag", [
    (["sample", "--weights", "random", "--n", "2", "--seeds", "1"], "--seeds:"),
    (["sample", "--weights", "random", "--class", "no-such-class"], "--class:"),
    (["stats", "compute", "no-such-folder", "--out", "s.npz"], "SRC:"),
    (["eval", "fid", "--weights", "random"], "--ref:"),
    (["sample", "--weights", "random", "--device", "tpu"], "--device:"),
])
def test_cli_shows_the_flag_of_the_command(cli, args, flag):
    r = cli(*args)
    assert r.exit_code == 2, r.stderr
    assert flag in r.stderr


def test_cli_flag_table():
    assert cli_flag("psi") == "--trunc"
    assert cli_flag("batch_size") == "--batch-size"
    assert cli_flag("classes", "sample") == "--class" and cli_flag("classes", "eval") == "--classes"
    assert cli_flag("--no-grid") == "--no-grid" and cli_flag("SRC") == "SRC"


