"""The shared loader: names, folders and specs -> a ready generator.

Most tests use a tiny test-only Generator registered in the loader's tables; the tests
at the end use the real architectures and formats.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from _checkpoint_util import MarkerPickle, state_hash
from _loader_tiny import TINY_SPEC, TinyConfig, TinyGen, register as register_tiny
from bigganctl.weights import hub, loader
from bigganctl.errors import CheckpointError, UsageError, WeightsUnavailable
from bigganctl.weights.registry import REGISTRY, ModelSpec, RemoteFile

REPO = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------------------
# A tiny generator, format and spec (tests/_loader_tiny.py), registered for these tests only

@pytest.fixture(autouse=True)
def tiny(monkeypatch):
    register_tiny(monkeypatch)
    yield
    loader.clear_cache()


def _tiny_state(seed=1):
    return TinyGen(TinyConfig()).random_init_(seed).state_dict()


def _save(path: Path, state) -> Path:
    torch.save(dict(state), path)
    return path


# ---------------------------------------------------------------------------------------
# Random weights, caching, device and dtype

@pytest.mark.numerics
def test_random_weights_are_deterministic_and_ready():
    G = loader.load_generator("tiny-8", weights="random", device="cpu")
    assert not G.training
    assert all(not p.requires_grad for p in G.parameters())
    assert G.spec is TINY_SPEC
    assert G.weights_info == {"source": "random", "path": None, "sha256": "random", "seed": 0,
                              "format": "tiny"}
    h = state_hash(G)
    loader.clear_cache()
    G2 = loader.load_generator("tiny-8", weights="random", device="cpu")
    assert G2 is not G and state_hash(G2) == h
    x = G(torch.randn(2, 4), torch.tensor([0, 2]), 1.0)
    assert x.shape == (2, 3, 8, 8) and x.dtype == torch.float32


def test_same_load_twice_reuses_the_model(tmp_path):
    a = loader.load_generator("tiny-8", weights="random", device="cpu")
    assert loader.load_generator(TINY_SPEC, weights="random", device="cpu") is a
    b = loader.load_generator("tiny-8", weights="random", device="cpu", dtype="bf16")
    assert b is not a and next(b.parameters()).dtype == torch.bfloat16
    assert b(torch.randn(1, 4), torch.tensor([1]), 1.0).dtype == torch.float32

    w = _save(tmp_path / "w.pt", _tiny_state())
    c = loader.load_generator("tiny-8", weights=w, device="cpu")
    assert loader.load_generator("tiny-8", weights=str(w), device="cpu") is c
    _save(w, _tiny_state(seed=2))                       # a new file under the same name
    os.utime(w, ns=(1, 1))
    d = loader.load_generator("tiny-8", weights=w, device="cpu")
    assert d is not c and state_hash(d) != state_hash(c)


def test_weights_file_loads_with_sha256(tmp_path):
    state = _tiny_state()
    w = _save(tmp_path / "w.pt", state)
    G = loader.load_generator("tiny-8", weights=w, device="cpu")
    assert G.weights_info["source"] == "file"
    assert G.weights_info["path"] == str(w)
    assert G.weights_info["sha256"] == hashlib.sha256(w.read_bytes()).hexdigest()
    assert torch.equal(G.fc.weight, state["fc.weight"])
    # The hash is remembered (keyed on size + mtime), not recomputed.
    assert hub.cached_sha256(w, compute=False) == G.weights_info["sha256"]


def test_unknown_model_and_missing_weights_are_usage_errors(tmp_path):
    with pytest.raises(UsageError) as e:
        loader.load_generator("biggan-deep-12", weights="random")
    assert e.value.param == "model" and "biggan-deep-128" in str(e.value)
    with pytest.raises(UsageError) as e:
        loader.load_generator("tiny-8", weights=tmp_path / "nope.pt")
    assert e.value.param == "weights" and "nope.pt" in str(e.value)
    with pytest.raises(UsageError) as e:
        loader.load_generator(tmp_path / "nofolder.bin", weights="random")
    assert e.value.param == "model"
    with pytest.raises(UsageError) as e:
        loader.load_generator("tiny-8", weights="random", device="tpu")
    assert e.value.param == "device"


@pytest.mark.parametrize("damage, named", [
    (lambda s: s.pop("conv.bias"), "conv.bias"),
    (lambda s: s.__setitem__("fc.wieght", s.pop("fc.weight")), "fc.wieght"),
    (lambda s: s.__setitem__("conv.weight", torch.zeros(3, 4, 1, 1)), "conv.weight"),
])
def test_bad_checkpoint_names_the_key(tmp_path, damage, named):
    state = dict(_tiny_state())
    damage(state)
    w = _save(tmp_path / "bad.pt", state)
    with pytest.raises(CheckpointError) as e:
        loader.load_generator("tiny-8", weights=w, device="cpu")
    assert named in str(e.value) and e.value.exit_code == 1


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    state = dict(_tiny_state())
    state["conv.bias"] = MarkerPickle(marker)
    w = tmp_path / "evil.pt"
    torch.save(state, w)
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="refused to unpickle"):
        loader.load_generator("tiny-8", weights=w, device="cpu")
    assert not marker.exists()


def test_model_folder_with_config(tmp_path):
    folder = tmp_path / "my-tiny"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"arch": "tiny", "format": "tiny", "resolution": 8,
                                                    "z_dim": 4, "num_classes": 3}))
    _save(folder / "pytorch_model.bin", _tiny_state())
    G = loader.load_generator(folder, device="cpu")
    assert G.spec.name == "my-tiny" and G.spec.local_dir == str(folder.resolve())
    assert G.weights_info["path"] == str(folder / "pytorch_model.bin")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="config.json"):
        loader.load_generator(tmp_path / "empty")
    (tmp_path / "empty" / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="config.json"):
        loader.load_generator(tmp_path / "empty")


def test_registry_download_then_offline_cache(monkeypatch, tmp_path):
    from _httpserver import FileServer

    w = _save(tmp_path / "w.pt", _tiny_state())
    data = w.read_bytes()
    with FileServer() as srv:
        srv.state.files["/tiny.pt"] = data
        spec = ModelSpec(name="tiny-dl", arch="tiny", config=TinyConfig(), format="tiny",
                         truncation="paper", description="tiny, downloadable",
                         files=(RemoteFile("tiny.pt", (srv.url("/tiny.pt"),), size=len(data),
                                           sha256=hashlib.sha256(data).hexdigest()),))
        monkeypatch.setitem(REGISTRY, "tiny-dl", spec)
        with pytest.raises(WeightsUnavailable, match="bigganctl models pull tiny-dl"):
            loader.load_generator("tiny-dl", device="cpu", progress=False)    # offline
        assert srv.state.requests == []
        monkeypatch.delenv("BIGGANCTL_OFFLINE")
        G = loader.load_generator("tiny-dl", device="cpu", progress=False)
        assert len(srv.state.requests) == 1
    assert G.weights_info == {"source": "cache", "path": str(hub.home() / "models/tiny-dl/tiny.pt"),
                              "sha256": hashlib.sha256(data).hexdigest(), "format": "tiny"}
    loader.clear_cache()
    monkeypatch.setenv("BIGGANCTL_OFFLINE", "1")
    monkeypatch.setattr(socket, "socket", lambda *a, **k: pytest.fail("socket opened offline"))
    G2 = loader.load_generator("tiny-dl", device="cpu", progress=False)
    assert G2.weights_info["source"] == "cache" and state_hash(G2) == state_hash(G)


def test_spec_without_files_asks_for_weights():
    with pytest.raises(UsageError) as e:
        loader.load_generator("biggan-tutorial-128")
    assert e.value.param == "weights"


# ---------------------------------------------------------------------------------------
# The real architectures

_HASH_SNIPPET = """
import hashlib, sys, torch
torch.set_num_threads(1)
from bigganctl.weights.loader import load_generator
G = load_generator(sys.argv[1], weights="random", device="cpu")
h = hashlib.sha256()
for k, v in sorted(G.state_dict().items()):
    h.update(k.encode()); h.update(v.contiguous().numpy().tobytes())
print(h.hexdigest())
"""


@pytest.mark.numerics
def test_random_weights_identical_across_processes():
    """Another process (1 thread, as under torchrun) builds the same random weights as this
    one (2 threads): ranks and runs agree on what `--weights random` is."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    other = subprocess.run([sys.executable, "-c", _HASH_SNIPPET, "biggan-deep-128"], env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    G = loader.load_generator("biggan-deep-128", weights="random", device="cpu")
    h = hashlib.sha256()
    for k, v in sorted(G.state_dict().items()):
        h.update(k.encode())
        h.update(v.contiguous().numpy().tobytes())
    assert len(other) == 64 and h.hexdigest() == other


def test_zip_with_member_is_unpacked_into_the_cache(tmp_path, monkeypatch):
    import zipfile

    w = _save(tmp_path / "G_ema.pth", _tiny_state())
    with zipfile.ZipFile(tmp_path / "release.zip", "w") as zf:
        zf.write(w, "138k/G_ema.pth")
    spec = ModelSpec(name="tiny-zip", arch="tiny", config=TinyConfig(), format="tiny", truncation="paper",
                     description="tiny, by hand", files=(RemoteFile("G_ema.pth", (), member="138k/G_ema.pth"),))
    monkeypatch.setitem(REGISTRY, "tiny-zip", spec)
    with pytest.raises(WeightsUnavailable, match="--weights PATH"):
        loader.load_generator("tiny-zip", device="cpu")
    G = loader.load_generator("tiny-zip", weights=tmp_path / "release.zip", device="cpu")
    cached = hub.home() / "models" / "tiny-zip" / "G_ema.pth"
    assert cached.read_bytes() == w.read_bytes() and G.weights_info["path"] == str(cached)
    loader.clear_cache()
    assert state_hash(loader.load_generator("tiny-zip", device="cpu")) == state_hash(G)


class TinyWithPlainTensor(TinyGen):
    """Keeps a tensor that is neither parameter nor buffer: the meta-device build must fall back."""

    def __init__(self, config):
        super().__init__(config)
        self.scale = torch.full((1,), 0.5)

    def synthesize(self, z, y, psi):
        return super().synthesize(z, y, psi) * self.scale


def test_loaded_weights_are_real_tensors_with_any_arch(tmp_path, monkeypatch):
    w = _save(tmp_path / "w.pt", _tiny_state())
    for cls in (TinyGen, TinyWithPlainTensor):
        monkeypatch.setitem(loader.ARCHS, "tiny", cls)
        loader.clear_cache()
        G = loader.load_generator("tiny-8", weights=w, device="cpu")
        assert type(G) is cls and not loader._has_meta_tensors(G)
        assert torch.isfinite(G(torch.randn(2, 4), torch.tensor([0, 1]), 1.0)).all()
