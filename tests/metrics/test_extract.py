"""Streaming extraction (bigganctl.metrics.extract) with a stand-in extractor whose features are
a fixed function of the sample index (no Inception forward): a shard takes exactly its samples,
the accumulated statistics do not depend on the batch size, an interrupted run saves a sealed
checkpoint and the resumed run ends where an uninterrupted one does; checkpoints are keyed,
altered ones are reported and removed, and saves are spaced by ``every``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bigganctl.metrics import extract as E
from bigganctl.metrics.features import FEATURE_DIM, NUM_LOGITS

N = 10


class IndexSource:
    """Sample ``i`` is a one-pixel "image" holding ``i``; stops with Ctrl-C after ``stop`` batches."""

    def __init__(self, stop: int | None = None):
        self.stop = stop

    def batches(self, lo: int, hi: int, batch_size: int):
        for k, off in enumerate(range(lo, hi, batch_size)):
            if self.stop is not None and k == self.stop:
                raise KeyboardInterrupt
            yield off, torch.arange(off, min(off + batch_size, hi), dtype=torch.float32).view(-1, 1, 1, 1)


class IndexFeatures:
    """Features and logits of sample ``i``: a seeded random row, the same whatever the batch."""

    device = torch.device("cpu")

    def __call__(self, x):
        rows = [torch.Generator().manual_seed(int(i)) for i in x.flatten()]
        feats = torch.stack([torch.rand(FEATURE_DIM, generator=g) for g in rows])
        return feats, torch.zeros(x.shape[0], NUM_LOGITS)


def _run(batch_size: int, **kw) -> E.Accumulators:
    return E.extract(IndexSource(kw.pop("stop", None)), IndexFeatures(), n=N, keep_features=True, is_splits=None,
                     batch_size=batch_size, **kw)


@pytest.fixture(scope="module")
def whole() -> E.Accumulators:
    return _run(4)


def test_a_shard_takes_exactly_its_samples(whole):
    acc = _run(3, shard=(3, 7))
    assert acc.done == 4
    np.testing.assert_array_equal(acc.features(), whole.features()[3:7])
    assert acc.fid.n == 4


@pytest.mark.numerics
def test_statistics_do_not_depend_on_the_batch_size(whole):
    # float64 sums of the same float32 rows in other groupings: max |diff| measured 0.0 (mean and
    # cov, batch sizes 1, 3, 10 against 4) with ATEN_CPU_CAPABILITY=default|avx2 x OMP_NUM_THREADS=1|3
    # and MKL_CBWR=AVX2; 1e-12 allows another summation order, not another row
    mu, sigma = whole.fid.mean_cov()
    for bs in (3, N):
        acc = _run(bs)
        assert acc.done == N
        np.testing.assert_array_equal(acc.features(), whole.features())        # rows are copied, in order
        mu_b, sigma_b = acc.fid.mean_cov()
        np.testing.assert_allclose(mu_b, mu, rtol=0, atol=1e-12)
        np.testing.assert_allclose(sigma_b, sigma, rtol=0, atol=1e-12)


def test_checkpoint_path_is_keyed_and_independent_of_key_order():
    a = E.checkpoint_path({"n": 10, "psi": 0.5})
    assert a == E.checkpoint_path({"psi": 0.5, "n": 10})
    assert a != E.checkpoint_path({"n": 11, "psi": 0.5})
    assert a.parent.name == "runs" and a.name.startswith("eval-") and a.suffix == ".pt"
    assert E.checkpoint_path({"n": 10, "psi": 0.5}, "stats").name.startswith("stats-")


def test_an_interrupted_run_saves_its_checkpoint_and_resumes_to_the_same_numbers(whole, tmp_path):
    key = {"run": 1}
    ckpt = E.Checkpointer(tmp_path / "eval.pt", key)
    with pytest.raises(KeyboardInterrupt):
        _run(4, stop=2, checkpointer=ckpt)                 # Ctrl-C before the third batch
    st = ckpt.load()
    assert st["key"] == key and st["done"] == 8 and st["features"].shape == (8, FEATURE_DIM)
    assert E.Checkpointer(tmp_path / "eval.pt", {"run": 2}).load() is None     # another run's key
    acc = E.new_accumulators(n_total=N, need_fid=True, is_splits=None, keep_features=True,
                             device=torch.device("cpu"))
    acc.load_state_dict(st)
    acc = _run(4, acc=acc)
    assert acc.done == N
    np.testing.assert_array_equal(acc.features(), whole.features())
    mu, sigma = acc.fid.mean_cov()
    mu_w, sigma_w = whole.fid.mean_cov()
    np.testing.assert_array_equal(mu, mu_w)                # the same batches summed in the same order
    np.testing.assert_array_equal(sigma, sigma_w)


def test_an_altered_checkpoint_is_reported_once_and_removed(tmp_path):
    warnings = []
    ckpt = E.Checkpointer(tmp_path / "eval.pt", {"k": 1}, warn=warnings.append)
    ckpt.save(_run(5))
    data = bytearray(ckpt.path.read_bytes())
    data[len(data) // 2] ^= 0x01
    ckpt.path.write_bytes(bytes(data))
    assert ckpt.load() is None
    assert len(warnings) == 1 and "not used" in warnings[0] and "starting afresh" in warnings[0]
    assert not ckpt.path.exists()


def test_saves_are_spaced_by_every(tmp_path):
    ckpt = E.Checkpointer(tmp_path / "eval.pt", {"k": 1}, every=4, seconds=1e9)
    acc = E.new_accumulators(n_total=N, need_fid=False, is_splits=None, keep_features=False,
                             device=torch.device("cpu"))
    acc.done = 3
    ckpt.maybe_save(acc)
    assert not ckpt.path.exists()                          # 3 new samples < 4
    acc.done = 4
    ckpt.maybe_save(acc)
    assert ckpt.load()["done"] == 4
    acc.done = 7
    ckpt.maybe_save(acc)
    assert ckpt.load()["done"] == 4                        # 3 since the last save
    acc.done = 8
    ckpt.maybe_save(acc)
    assert ckpt.load()["done"] == 8


def test_a_save_that_fails_warns_once_and_the_run_goes_on(tmp_path):
    warnings = []
    (tmp_path / "file").write_text("x")
    ckpt = E.Checkpointer(tmp_path / "file" / "eval.pt", {"k": 1}, every=1, warn=warnings.append)
    acc = _run(5, checkpointer=ckpt)                        # the parent is a file: every save fails
    assert acc.done == N
    assert len(warnings) == 1 and "cannot be resumed" in warnings[0]
