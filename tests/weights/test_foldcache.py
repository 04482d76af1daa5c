"""The load cache (bigganctl.weights.foldcache): a miss writes the folded weights as safetensors, a
hit loads them without reading the checkpoint, a corrupted file is detected and rebuilt."""

from __future__ import annotations

import pytest
import torch

from bigganctl.weights import foldcache, loader
from bigganctl.testing import hf

from _tiny_configs import TINY


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return hf.write_random_checkpoint(tmp_path_factory.mktemp("tiny_deep"), TINY, seed=5)


@pytest.fixture
def reads(monkeypatch):
    """Counts how often the checkpoint itself is read (the cache on: tests/conftest.py turns
    it off for every other test)."""
    monkeypatch.setenv("BIGGANCTL_LOAD_CACHE", "1")
    calls = []
    real = loader._read

    def counting(spec, target):
        calls.append(target)
        return real(spec, target)

    monkeypatch.setattr(loader, "_read", counting)
    loader.clear_cache()
    yield calls
    loader.clear_cache()


def _load(folder):
    loader.clear_cache()
    G = loader.load_generator(folder, device="cpu", progress=False)
    return G, foldcache.cache_path(G.spec, G.weights_info["sha256"])


def _same(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_miss_then_hit(folder, reads):
    G1, path = _load(folder)
    assert len(reads) == 1 and path.is_file() and path.with_suffix(".sha256").is_file()
    G2, _ = _load(folder)
    assert len(reads) == 1                    # the hit did not read the checkpoint
    assert G2 is not G1 and _same(G1, G2)


@pytest.mark.parametrize("damage", ["flip", "truncate", "record"])
def test_corrupted_cache_is_detected_and_rebuilt(folder, reads, damage):
    G1, path = _load(folder)
    if damage == "flip":
        data = bytearray(path.read_bytes())
        data[-5] ^= 0xFF                      # a weight's bytes, not the header
        path.write_bytes(bytes(data))
    elif damage == "truncate":
        path.write_bytes(path.read_bytes()[:100])
    else:
        path.with_suffix(".sha256").unlink()
    G2, _ = _load(folder)
    assert len(reads) == 2 and _same(G1, G2)
    assert foldcache.read_cached(path) is not None           # rebuilt, and whole again


def test_cache_can_be_turned_off(folder, reads, monkeypatch):
    monkeypatch.setenv("BIGGANCTL_LOAD_CACHE", "0")
    _, path = _load(folder)
    assert not path.exists()
