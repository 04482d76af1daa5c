"""Shared test fixtures. Every test runs with an empty cache and offline by default."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

# Two cores shared by torch's intra-op pool and other processes: busy-waiting OpenMP
# threads slow small ops down many times over. Must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest
import torch
from typer.testing import CliRunner

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("bigganctl_home")
    monkeypatch.setenv("BIGGANCTL_HOME", str(home))
    monkeypatch.setenv("BIGGANCTL_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(home / "torch"))
    monkeypatch.delenv("BIGGANCTL_DEBUG", raising=False)
    yield


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)


@pytest.fixture
def cli():
    """Run ``bigganctl ARGS...`` in-process; returns exit code, stdout and stderr apart."""
    from bigganctl.cli.app import app

    runner = CliRunner()

    def run(*args: str) -> CliResult:
        r = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
        return CliResult(r.exit_code, r.stdout, r.stderr)

    return run
