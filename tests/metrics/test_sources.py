"""Image sources for the metrics (bigganctl.metrics.sources): folders (recursive, sorted, filtered
by extension, errors naming the problem), .npz batches streamed from arr_0, ADM's center crop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from _metrics_util import smooth_images, write_folder
from bigganctl.errors import UsageError
from bigganctl.metrics.sources import NpzSource, Preprocess, adm_center_crop, open_images


def test_folder_is_recursive_sorted_and_filters_extensions(tmp_path):
    ims = smooth_images(4, 0, size=8)
    write_folder(tmp_path / "b", ims[2:])
    write_folder(tmp_path / "a", ims[:2], ext="jpg")
    (tmp_path / "notes.txt").write_text("x")
    src = open_images(tmp_path)
    assert src.n == 4 and [f.parent.name for f in src.files] == ["a", "a", "b", "b"]
    batches = list(src.batches(1, 4, 2))
    assert [off for off, _ in batches] == [1, 3] and batches[0][1].shape == (2, 3, 8, 8)
    np.testing.assert_array_equal(batches[1][1][0].permute(1, 2, 0).numpy(), ims[3])   # png: lossless


def test_folder_errors_name_the_problem(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no images") as e:
        open_images(tmp_path / "empty")
    assert e.value.param == "images"
    mixed = tmp_path / "mixed"
    write_folder(mixed, smooth_images(1, 0, size=8))
    write_folder(mixed / "sub", smooth_images(1, 0, size=12))
    with pytest.raises(UsageError, match="different sizes.*--resize"):
        open_images(mixed)
    src = open_images(mixed, Preprocess(resize=10))
    assert src.size == (10, 10) and next(src.batches(0, 2, 2))[1].shape == (2, 3, 10, 10)
    bad = tmp_path / "bad"
    write_folder(bad, smooth_images(2, 0, size=8))
    (bad / "0001.png").write_bytes(b"\x89PNG\r\n\x1a\ngarbage")
    with pytest.raises(UsageError, match="0001.png"):
        open_images(bad)


def test_npz_source_streams_arr0(tmp_path):
    ims = smooth_images(7, 1, size=8)
    np.savez(tmp_path / "b.npz", arr_0=ims, arr_1=np.arange(7))
    src = open_images(tmp_path / "b.npz")
    assert isinstance(src, NpzSource) and src.n == 7 and src.resolution == 8
    got = torch.cat([x for _, x in src.batches(2, 7, 3)])
    np.testing.assert_array_equal(got.permute(0, 2, 3, 1).numpy(), ims[2:])
    np.savez_compressed(tmp_path / "c.npz", arr_0=ims.transpose(0, 3, 1, 2))      # NCHW, deflated
    got = torch.cat([x for _, x in open_images(tmp_path / "c.npz").batches(0, 7, 4)])
    np.testing.assert_array_equal(got.permute(0, 2, 3, 1).numpy(), ims)
    np.savez(tmp_path / "f.npz", arr_0=ims.astype(np.float32))
    with pytest.raises(UsageError, match="uint8"):
        open_images(tmp_path / "f.npz")


def test_adm_center_crop():
    from PIL import Image

    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 500, 3), dtype=np.uint8))
    out = adm_center_crop(img, 64)               # 500x300 -> box to 250x150 -> bicubic 107x64 -> crop
    assert out.size == (64, 64)
    same = Image.fromarray(smooth_images(1, 0, size=32)[0])
    np.testing.assert_array_equal(np.asarray(adm_center_crop(same, 32)), np.asarray(same))
