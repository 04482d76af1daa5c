"""Reference statistics files (ours and foreign) and image sources; no Inception forwards."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from _metrics_util import smooth_images, write_folder
from bigganctl.errors import UsageError, WeightsUnavailable
from bigganctl.metrics.features import OFFICIAL_ID
from bigganctl.metrics.sources import NpzSource, Preprocess, adm_center_crop, open_images
from bigganctl.metrics.reference import (
    TORCHVISION_ID,
    Stats,
    check_comparable,
    load_reference,
    read_stats,
    write_stats,
)


def _mu_sigma(d=2048, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((d, 8))
    return rng.random(d), a @ a.T / 8


def test_our_stats_roundtrip(tmp_path):
    mu, sigma = _mu_sigma(16)
    feats = np.random.default_rng(1).random((5, 16)).astype(np.float32)
    meta = {"extractor_id": "x", "count": 5, "resolution": 32, "source": "/data/imgs"}
    write_stats(tmp_path / "s.npz", Stats(mu, sigma, feats, meta))
    st = read_stats(tmp_path / "s.npz")
    np.testing.assert_array_equal(st.mu, mu)
    np.testing.assert_array_equal(st.sigma, sigma)
    np.testing.assert_array_equal(st.features, feats)
    assert st.meta["source"] == "/data/imgs" and st.meta["path"] == str(tmp_path / "s.npz")
    assert st.extractor_id == "x" and st.meta["resolution"] == 32
    assert not list(tmp_path.glob(".*"))                     # no temporary file left


def test_adm_reference_batch_is_recognised(tmp_path):
    mu, sigma = _mu_sigma()
    np.savez(tmp_path / "VIRTUAL_imagenet64_labeled.npz", mu=mu, sigma=sigma, mu_s=mu[:8], sigma_s=sigma[:8, :8],
             arr_0=np.zeros((2, 64, 64, 3), np.uint8))
    st = read_stats(tmp_path / "VIRTUAL_imagenet64_labeled.npz")
    assert st.extractor_id == OFFICIAL_ID and st.meta["resolution"] == 64
    assert st.meta["format"] == "adm-reference-batch" and not st.meta.get("assumed")


def test_biggan_pytorch_moments_are_torchvision_and_refused(tmp_path):
    mu, sigma = _mu_sigma()
    np.savez(tmp_path / "I128_inception_moments.npz", mu=mu, sigma=sigma)
    st = read_stats(tmp_path / "I128_inception_moments.npz")
    assert st.extractor_id == TORCHVISION_ID
    with pytest.raises(UsageError, match="torchvision"):
        check_comparable(st, extractor_id=OFFICIAL_ID)
    warnings = check_comparable(st, extractor_id=OFFICIAL_ID, force=True)
    assert warnings and "forced" in warnings[0]


def test_plain_mu_sigma_is_assumed_tf_inception_with_a_warning(tmp_path):
    mu, sigma = _mu_sigma()
    np.savez(tmp_path / "fid_stats.npz", mu=mu, sigma=sigma)
    st = read_stats(tmp_path / "fid_stats.npz")
    assert st.extractor_id == OFFICIAL_ID and st.meta["assumed"]
    assert any("assumed" in w for w in check_comparable(st, extractor_id=OFFICIAL_ID))


def test_torch_fidelity_cache_files(tmp_path):
    from torch_fidelity.utils_torch import torch_atomic_save

    feats = np.random.default_rng(2).random((6, 2048)).astype(np.float32)
    p = tmp_path / "cifar-inception-v3-compat-features-2048.pt"
    torch_atomic_save(torch.from_numpy(feats), str(p))
    st = read_stats(p)
    assert st.features.shape == (6, 2048) and st.meta["count"] == 6
    np.testing.assert_allclose(st.sigma, np.cov(feats.astype(np.float64), rowvar=False), atol=1e-12)
    q = tmp_path / "cifar-inception-v3-compat-stat-fid-2048.pt"
    torch_atomic_save({"mu": feats.mean(0), "sigma": np.cov(feats, rowvar=False)}, str(q))
    st2 = read_stats(q)
    assert st2.extractor_id == OFFICIAL_ID and st2.features is None
    np.testing.assert_allclose(st2.mu, feats.mean(0), rtol=1e-6)


def test_files_without_mu_sigma_are_usage_errors(tmp_path):
    np.savez(tmp_path / "imgs.npz", arr_0=np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(UsageError, match="no mu/sigma.*stats compute") as e:
        read_stats(tmp_path / "imgs.npz")
    assert e.value.param == "ref"
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(UsageError, match="not a readable"):
        read_stats(tmp_path / "junk.npz")
    np.savez(tmp_path / "bad.npz", mu=np.zeros(3), sigma=np.zeros((4, 4)))
    with pytest.raises(UsageError, match="do not fit"):
        read_stats(tmp_path / "bad.npz")


def test_feature_dimension_mismatch_is_refused_even_when_forced(tmp_path):
    mu, sigma = _mu_sigma(64)
    st = Stats(mu, sigma, meta={"extractor_id": OFFICIAL_ID, "path": "x.npz"})
    for force in (False, True):
        with pytest.raises(UsageError, match="64-dimensional"):
            check_comparable(st, extractor_id=OFFICIAL_ID, force=force)


def test_resolution_mismatch_is_refused_unless_forced():
    mu, sigma = _mu_sigma()
    st = Stats(mu, sigma, meta={"extractor_id": OFFICIAL_ID, "resolution": 256, "name": "imagenet-256"})
    assert check_comparable(st, extractor_id=OFFICIAL_ID, resolution=256) == []
    with pytest.raises(UsageError, match="resolution 256"):
        check_comparable(st, extractor_id=OFFICIAL_ID, resolution=128)
    assert "forced" in check_comparable(st, extractor_id=OFFICIAL_ID, resolution=128, force=True)[0]


def test_registered_reference_offline_says_how_to_get_it():
    with pytest.raises(WeightsUnavailable) as e:
        load_reference("imagenet-128")
    assert "bigganctl stats pull imagenet-128" in e.value.hint


def test_unknown_reference_name_suggests(tmp_path):
    with pytest.raises(UsageError, match="imagenet-128"):
        load_reference("imagenet-12")


def test_stats_list_and_info_cli(cli, tmp_path):
    r = cli("stats", "list", "--json")
    assert r.exit_code == 0
    names = [x["name"] for x in r.json()["references"]]
    assert names == ["imagenet-64", "imagenet-128", "imagenet-256", "imagenet-512"]
    assert not any(x["cached"] for x in r.json()["references"])
    mu, sigma = _mu_sigma()
    write_stats(tmp_path / "s.npz", Stats(mu, sigma, None, {"extractor_id": "x", "count": 3}))
    r = cli("stats", "info", str(tmp_path / "s.npz"), "--json")
    assert r.exit_code == 0, r.stderr
    info = r.json()
    assert info["dim"] == 2048 and info["count"] == 3 and info["has_features"] is False
    r = cli("stats", "info", "imagenet-256", "--json")
    assert r.exit_code == 0 and r.json()["cached"] is False and "stats pull" in r.json()["hint"]
    assert cli("stats", "info", "nope.npz").exit_code == 2
    r = cli("stats", "pull", "imagenet-64")              # offline in tests
    assert r.exit_code == 1 and "stats pull imagenet-64" in r.stderr


# ----------------------------------------------------------------------------- image sources

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


def test_compute_stats_refuses_bad_targets(tmp_path):
    from bigganctl.api.stats import compute_stats

    write_folder(tmp_path / "imgs", smooth_images(3, 0, size=8))
    (tmp_path / "out.npz").write_bytes(b"x")
    with pytest.raises(UsageError, match="--overwrite"):
        compute_stats(tmp_path / "imgs", tmp_path / "out.npz")
    with pytest.raises(UsageError, match=r"\.npz"):
        compute_stats(tmp_path / "imgs", tmp_path / "out.txt")
    assert json.loads(json.dumps({"ok": 1}))     # keep json import honest
