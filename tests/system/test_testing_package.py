"""``bigganctl.testing`` holds the random-weight writers; the package that loads models
never needs it: the format modules carry no writers, and loading a checkpoint of every
format in a fresh interpreter leaves ``bigganctl.testing`` unimported."""

from __future__ import annotations

import pickle
import subprocess
import sys

import pytest

from bigganctl.weights.formats import ajbrock, hf, ivclab, tutorial
from bigganctl.weights.registry import ModelSpec
from bigganctl.testing import ajbrock as ajbrock_writer, hf as hf_writer, tutorial as tutorial_writer

from _tiny_configs import SMALL, TINY


@pytest.mark.parametrize("module", [hf, ajbrock, ivclab, tutorial])
def test_format_modules_carry_no_writers(module):
    for name in ("write_random_checkpoint", "from_internal", "write_checkpoint", "random_hf_state_dict"):
        assert not hasattr(module, name), f"{module.__name__}.{name}"


def test_loading_never_imports_bigganctl_testing(tmp_path):
    deep = hf_writer.write_random_checkpoint(tmp_path / "deep", TINY, seed=1)
    author = ajbrock_writer.write_random_checkpoint(tmp_path / "G_ema.pth", SMALL["ajbrock"], seed=1)
    seed = tutorial_writer.write_random_checkpoint(tmp_path / "seed.pth", SMALL["seed"], seed=1)
    specs = [ModelSpec(name="d", arch="biggan-deep", config=TINY, format="hf", truncation="deepmind",
                       description=""),
             ModelSpec(name="a", arch="biggan", config=SMALL["ajbrock"], format="ajbrock",
                       truncation="paper", description=""),
             ModelSpec(name="s", arch="biggan", config=SMALL["seed"], format="tutorial",
                       truncation="paper", description="")]
    (tmp_path / "specs.pkl").write_bytes(pickle.dumps(list(zip(specs, [str(deep), str(author), str(seed)]))))
    code = f"""
import pickle, sys
import torch
from bigganctl.weights import loader
with open({str(tmp_path / "specs.pkl")!r}, "rb") as f:
    for spec, path in pickle.load(f):
        assert isinstance(loader.load_generator(spec, path, device="cpu"), torch.nn.Module)
print(sorted(m for m in sys.modules if m.startswith("bigganctl.testing")))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_no_module_outside_testing_imports_it():
    from _layout_util import PACKAGE, import_graph

    users = {m for m, deps in import_graph(PACKAGE).items()
             if not m.startswith("bigganctl.testing") and any(d.startswith("bigganctl.testing") for d in deps)}
    assert users == set()
