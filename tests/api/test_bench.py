"""Throughput measurement (bigganctl.api.bench): whole batches are timed, the projected FID-50k
time, the document of a run on a model folder, bad arguments refused naming the parameter
before anything is timed."""

from __future__ import annotations

import hashlib

import pytest
import torch

from _tiny_configs import TINY, OOMAbove
from bigganctl.api import bench
from bigganctl.errors import UsageError
from bigganctl.models.biggan_deep import BigGANDeep
from bigganctl.testing import hf as hf_writer


@pytest.fixture(scope="module")
def tiny():
    return BigGANDeep(TINY).random_init_(3).eval().requires_grad_(False)


def test_bench_times_whole_batches_of_the_automatic_size(tiny, monkeypatch):
    """On CUDA the automatic batch may be 512 while ``--n`` is 32: the timed images are
    whole batches (rounded up), never one padded partial batch."""
    monkeypatch.setattr(bench, "batch_size_for", lambda G, batch_size: batch_size or 16)
    G = OOMAbove(tiny, limit=10**9)                   # records the batch sizes
    res = bench.generation_throughput(G, n=5)
    assert (res["n"], res["batch_size"]) == (16, 16) and G.sizes == [16, 16]
    assert res["images_per_s"] == pytest.approx(16 / res["seconds"])
    G.sizes.clear()
    res = bench.generation_throughput(G, n=9, batch_size=4)
    assert res["n"] == 12 and G.sizes == [4, 4, 4, 4]


def test_projected_fid50k_time_adds_generation_and_features():
    assert bench.projected_fid50k_s(100.0, 400.0) == pytest.approx(500 + 125)


def test_bench_document_of_a_model_folder(tmp_path):
    folder = hf_writer.write_random_checkpoint(tmp_path / "tiny-deep", TINY, seed=1)
    notes = []
    doc = bench.bench(folder, weights=None, device="cpu", n=5, batch_size=2, features=False, note=notes.append)
    assert (doc["device"], doc["dtype"], doc["threads"]) == ("cpu", "fp32", torch.get_num_threads())
    assert (doc["n"], doc["batch_size"]) == (6, 2)                        # whole batches: 5 -> 6
    assert doc["images_per_s"] == pytest.approx(6 / doc["seconds"])
    assert list(doc["runs"]) == ["eager"] and doc["fid50k_s"] is None      # no extractor timed
    assert doc["load_s"] >= 0 and doc["peak_rss_mb"] > 10
    assert doc["weights"]["sha256"] == hashlib.sha256((folder / "pytorch_model.bin").read_bytes()).hexdigest()
    assert len(notes) == 1 and notes[0].startswith("loaded ") and "timing 5 images" in notes[0]


@pytest.mark.parametrize("kw, param", [({"psi": 1.5}, "psi"), ({"device": "tpu"}, "device"),
                                       ({"dtype": "fp64"}, "dtype")])
def test_bad_arguments_name_the_parameter_before_any_timing(tmp_path, monkeypatch, kw, param):
    folder = hf_writer.write_random_checkpoint(tmp_path / "tiny-deep", TINY, seed=1)
    monkeypatch.setattr(bench, "generation_throughput", lambda *a, **k: pytest.fail("timed"))
    with pytest.raises(UsageError) as e:
        bench.bench(folder, weights=None, **{"device": "cpu", **kw})
    assert e.value.param == param
