"""`stats compute` for large folders: DataLoader workers give the pixels of one process, in
order, and report unreadable files as usage errors; an interrupted run resumes to the same
statistics. (torchrun against one process: tests/runtime/test_distributed.py.) A target that is no .npz
or exists without --overwrite is refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from _metrics_util import Interrupting, inception_file, smooth_images, write_folder
from bigganctl.api.stats import compute_stats as compute
from bigganctl.errors import UsageError
from bigganctl.metrics.sources import FolderSource, Preprocess


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """Seven images of three sizes (--center-crop does real work, with Pillow alone)."""
    d = tmp_path_factory.mktemp("mixed")
    for k, size in enumerate((24, 32, 40)):
        write_folder(d / f"s{size}", smooth_images(2 + (k == 1), k, size=size, grid=4), ext="png")
    return d


def _all(src: FolderSource, bs: int) -> tuple[list[int], torch.Tensor]:
    offs, xs = zip(*src.batches(1, src.n, bs))
    return list(offs), torch.cat(xs)


def test_workers_decode_the_same_pixels_in_the_same_order(mixed):
    one = FolderSource(mixed, Preprocess(center_crop=16))
    two = FolderSource(mixed, Preprocess(center_crop=16), workers=2)
    (o1, x1), (o2, x2) = _all(one, 2), _all(two, 2)
    assert o1 == o2 == [1, 3, 5] and x1.shape == (6, 3, 16, 16)
    assert torch.equal(x1, x2)


def test_an_unreadable_image_in_a_worker_is_a_usage_error(tmp_path):
    folder = write_folder(tmp_path / "imgs", smooth_images(3, 0, size=32))
    bad = folder / "0001.png"
    bad.write_bytes(bad.read_bytes()[:120])            # the header reads, the pixels do not
    src = FolderSource(folder, workers=2)
    with pytest.raises(UsageError, match="cannot read image .*0001.png"):
        list(src.batches(0, src.n, 2))


@pytest.mark.numerics
def test_an_interrupted_run_resumes_to_the_same_statistics(mixed, tmp_path):
    kw = dict(resize=None, center_crop=16, n=2, keep_features=True, inception_weights=inception_file(),
              device="cpu", batch_size=1, overwrite=False)
    with pytest.raises(KeyboardInterrupt):
        compute(mixed, tmp_path / "a.npz", progress=Interrupting(1), **kw)
    assert not (tmp_path / "a.npz").exists()
    from bigganctl.weights import hub

    assert len(list((hub.home() / "runs").glob("stats-*.pt"))) == 1
    again = Interrupting(None)
    resumed = compute(mixed, tmp_path / "a.npz", progress=again, **kw)
    assert again.initial == 1                                  # continued after the first batch
    assert not list((hub.home() / "runs").glob("stats-*.pt"))  # removed once finished
    whole = compute(mixed, None, progress=None, resume=False, **kw)
    np.testing.assert_array_equal(resumed.mu, whole.mu)         # the same sums in the same order
    np.testing.assert_array_equal(resumed.sigma, whole.sigma)
    np.testing.assert_array_equal(resumed.features, whole.features)


def test_compute_stats_refuses_bad_targets(tmp_path):
    from bigganctl.api.stats import compute_stats

    write_folder(tmp_path / "imgs", smooth_images(3, 0, size=8))
    (tmp_path / "out.npz").write_bytes(b"x")
    with pytest.raises(UsageError, match="--overwrite"):
        compute_stats(tmp_path / "imgs", tmp_path / "out.npz")
    with pytest.raises(UsageError, match=r"\.npz"):
        compute_stats(tmp_path / "imgs", tmp_path / "out.txt")
    assert json.loads(json.dumps({"ok": 1}))     # keep json import honest
