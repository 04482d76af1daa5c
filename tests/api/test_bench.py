"""Generation throughput (bigganctl.api.bench): whole batches are timed, the result document's
numbers agree with each other."""

from __future__ import annotations

import pytest

from _tiny_configs import TINY, OOMAbove
from bigganctl.models.biggan_deep import BigGANDeep


@pytest.fixture(scope="module")
def tiny():
    return BigGANDeep(TINY).random_init_(3).eval().requires_grad_(False)


def test_bench_times_whole_batches_of_the_automatic_size(tiny, monkeypatch):
    """On CUDA the automatic batch may be 512 while ``--n`` is 32: the timed images are
    whole batches (rounded up), never one padded partial batch."""
    from bigganctl.api import bench

    monkeypatch.setattr(bench, "batch_size_for", lambda G, batch_size: batch_size or 16)
    G = OOMAbove(tiny, limit=10**9)                   # records the batch sizes
    res = bench.generation_throughput(G, n=5)
    assert (res["n"], res["batch_size"]) == (16, 16) and G.sizes == [16, 16]
    assert res["images_per_s"] == pytest.approx(16 / res["seconds"])
    G.sizes.clear()
    res = bench.generation_throughput(G, n=9, batch_size=4)
    assert res["n"] == 12 and G.sizes == [4, 4, 4, 4]
