"""Shared test fixtures. Every test runs with an empty cache and offline by default."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass

# The test files mirror the package (tests/<subpackage>/test_<module>.py) and are imported with
# --import-mode=importlib (pyproject.toml), which adds no folder to sys.path: the shared helpers
# (tests/_*.py, tests/tiny_generator.py) are importable by name because tests/ is put first here.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# Two cores shared by torch's intra-op pool and other processes: busy-waiting OpenMP
# threads slow small ops down many times over. Must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest
import torch
from typer.testing import CliRunner

#: Threads for torch's intra-op pool: OMP_NUM_THREADS when set, else 2 (CI's cores). Applied
#: explicitly because torch caps the variable at the cores it sees: on a 2-core machine
#: `OMP_NUM_THREADS=3 make test-numerics` really runs 3 threads, so MKL and oneDNN split
#: work as on a machine with more cores (docs/development.md, "Numerics").
THREADS = int(os.environ.get("OMP_NUM_THREADS") or 2)
torch.set_num_threads(THREADS)


#: Variables that change where bigganctl (and torch, Hugging Face tools) look for files or
#: whether they may download: every test starts from the same, isolated values, whatever
#: the user's shell exports (HF_HUB_OFFLINE=1 is common on clusters).
_CLEARED = ("HF_HUB_OFFLINE", "HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "BIGGANCTL_DEBUG",
            "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory, monkeypatch):
    """An empty bigganctl cache, offline, and no cache of the user's touched."""
    home = tmp_path_factory.mktemp("bigganctl_home")
    for key in _CLEARED:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("BIGGANCTL_HOME", str(home))
    monkeypatch.setenv("BIGGANCTL_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(home / "torch"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "xdg"))
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    # the folded-weights cache writes a copy of every checkpoint loaded; tests/weights/test_foldcache.py
    # turns it on for itself
    monkeypatch.setenv("BIGGANCTL_LOAD_CACHE", "0")
    yield


@pytest.fixture(scope="session", autouse=True)
def _models_live_for_the_session():
    """The loader caches loaded models weakly (a model lives while a caller holds it). Tests
    run one command at a time, so without this every in-process `--weights random` command
    would rebuild its random model (seconds each for full-size BigGAN). Keeping a strong
    reference to every model the loader caches makes the second load of the same (spec,
    weights, device, dtype) a cache hit, as in one long-lived Python session. clear_cache()
    still empties the cache for the tests that need fresh loads."""
    import weakref

    from bigganctl.weights import loader

    kept: list = []

    class Keeping(weakref.WeakValueDictionary):
        def __setitem__(self, key, value):
            kept.append(value)
            super().__setitem__(key, value)

    original = loader._CACHE
    loader._CACHE = Keeping()
    yield
    loader._CACHE = original
    kept.clear()


@pytest.fixture(scope="session", autouse=True)
def _json_outputs_match_their_schemas():
    """Every in-process ``bigganctl ... --json`` run of the suite (whichever CliRunner runs it)
    is checked against the command's schema in docs/schema/ (tests/_schemas.py)."""
    from typer.testing import CliRunner

    from _schemas import check_output

    original = CliRunner.invoke

    def invoke(self, app, args=None, *a, **kw):
        r = original(self, app, args, *a, **kw)
        check_output(list(args) if isinstance(args, (list, tuple)) else None, r.exit_code, r.stdout)
        return r

    CliRunner.invoke = invoke
    yield
    CliRunner.invoke = original


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)


@pytest.fixture
def tiny_model(monkeypatch):
    """A tiny test-only generator in place of every model the operations open
    (``bigganctl.api._shared.open_generator``)."""
    import bigganctl.api._shared as shared
    from tiny_generator import TinyGenerator

    G = TinyGenerator()
    monkeypatch.setattr(shared, "open_generator", lambda *a, **k: G)
    return G


@pytest.fixture
def cli():
    """Run ``bigganctl ARGS...`` in-process; returns exit code, stdout and stderr apart."""
    from bigganctl.cli.app import app

    runner = CliRunner()

    def run(*args: str) -> CliResult:
        r = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
        return CliResult(r.exit_code, r.stdout, r.stderr)

    return run
