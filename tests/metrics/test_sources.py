"""Image sources for the metrics (bigganctl.metrics.sources): folders (recursive, sorted, filtered
by extension, errors naming the problem), .npz batches streamed from arr_0, ADM's center crop,
the preprocessing choice, a generator's samples by seed, the fingerprint of its weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from _metrics_util import smooth_images, write_folder
from tiny_generator import TinyGenerator

from bigganctl.errors import UsageError
from bigganctl.generate import iter_uint8
from bigganctl.metrics.sources import (GeneratorSource, NpzSource, Preprocess, adm_center_crop, fingerprint,
                                       generator_dtype, open_images)


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


def test_preprocess_takes_one_of_resize_and_center_crop():
    assert Preprocess().size is None and Preprocess().describe() == "none"
    assert Preprocess(resize=64).size == 64 and Preprocess(center_crop=32).size == 32
    with pytest.raises(UsageError) as e:
        Preprocess(resize=64, center_crop=64)
    assert e.value.param == "resize"
    with pytest.raises(UsageError) as e:
        Preprocess(center_crop=0)
    assert e.value.param == "center_crop"


def test_generator_source_yields_the_samples_of_its_seeds_at_any_batch_size():
    G = TinyGenerator(resolution=16)
    labels = torch.tensor([3, 1, 4, 1, 5, 9, 2])
    src = GeneratorSource(G, labels, seed=10, psi=0.5)
    assert (src.n, src.size, src.resolution, src.kind) == (7, (16, 16), 16, "model")
    offs, xs = zip(*src.batches(2, 7, 2))
    assert offs == (2, 4, 6) and [x.shape[0] for x in xs] == [2, 2, 1]
    got = torch.cat(xs)
    assert got.dtype == torch.uint8 and got.shape == (5, 3, 16, 16)
    want = torch.cat([x for _, x in iter_uint8(G, labels[2:7], list(range(12, 17)), 0.5, batch_size=5)])
    # the same per-sample noise; pixels of other batch sizes by the uint8 rule: at most 1 level apart
    assert (got.int() - want.int()).abs().max() <= 1


def test_fingerprint_follows_the_weights():
    a, b = TinyGenerator(seed=0), TinyGenerator(seed=0)
    assert fingerprint(a) == fingerprint(b) and len(fingerprint(a)) == 64
    with torch.no_grad():
        b.out.bias[0] += 1e-6
    assert fingerprint(a) != fingerprint(b)
    b.weights_info = {"sha256": "ab" * 32}                 # a file's recorded sha256 is taken as is
    assert fingerprint(b) == "ab" * 32
    b.weights_info = {"sha256": "random"}                   # random weights: hashed like in-memory ones
    assert len(fingerprint(b)) == 64 and fingerprint(b) != "random"
    assert generator_dtype(a, "fp16") == "fp32" and generator_dtype(a.to(torch.bfloat16), "fp32") == "bf16"
    assert generator_dtype(torch.nn.Identity(), "fp16") == "fp16"
