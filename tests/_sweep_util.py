"""What the sweep tests (tests/api/test_sweep.py, tests/cli/test_sweep.py) share: the output
columns, the strip's tile size, random reference statistics, the common command-line
arguments, an in-process run of the command and readers of its outputs, and the module
environment their module-scoped ``env`` fixtures yield from."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from _metrics_util import inception_file, random_extractor_stats

COLUMNS = ["psi", "convention", "fid", "is_mean", "is_std", "kid_mean", "kid_std", "sfid", "precision", "recall",
           "n", "seconds"]
TILE = 128 + 2               # biggan-deep-128 tiles plus the grid padding


def random_ref(path: Path) -> Path:
    """2048-d statistics with 40 features, labelled with the random extractor, 128 px."""
    return random_extractor_stats(path, features=True)


def common_args(ref: Path) -> list[str]:
    return ["--model", "biggan-deep-128", "--weights", "random", "--ref", str(ref),
            "--inception-weights", str(inception_file()), "--device", "cpu", "--batch-size", "5"]


def invoke(*args):
    from bigganctl.cli.app import app

    r = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


def sweep_env(tmp_path_factory):
    """The module's own BIGGANCTL_HOME (the autouse isolation is per test): a generator for a
    module-scoped fixture (``yield from sweep_env(tmp_path_factory)``)."""
    home = tmp_path_factory.mktemp("sweep_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BIGGANCTL_HOME", str(home))
        mp.setenv("BIGGANCTL_OFFLINE", "1")
        mp.setenv("TORCH_HOME", str(home / "torch"))
        yield {"home": home, "ref": random_ref(tmp_path_factory.mktemp("sweep_ref") / "R.npz")}


def png(path: Path) -> Image.Image:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as im:
        im.verify()
    return Image.open(path)


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))
