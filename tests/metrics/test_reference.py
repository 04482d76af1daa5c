"""Reference statistics files, ours and foreign (ADM batches, BigGAN-PyTorch moments, plain
mu/sigma, torch-fidelity caches): recognised, refused or assumed with a warning; mismatched
dimensions and resolutions; registered references offline; no Inception forwards."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from _metrics_util import mu_sigma
from bigganctl.errors import UsageError, WeightsUnavailable
from bigganctl.metrics.features import OFFICIAL_ID
from bigganctl.metrics.reference import (
    TORCHVISION_ID,
    Stats,
    check_comparable,
    load_reference,
    read_stats,
    write_stats,
)


def test_our_stats_roundtrip(tmp_path):
    mu, sigma = mu_sigma(16)
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
    mu, sigma = mu_sigma()
    np.savez(tmp_path / "VIRTUAL_imagenet64_labeled.npz", mu=mu, sigma=sigma, mu_s=mu[:8], sigma_s=sigma[:8, :8],
             arr_0=np.zeros((2, 64, 64, 3), np.uint8))
    st = read_stats(tmp_path / "VIRTUAL_imagenet64_labeled.npz")
    assert st.extractor_id == OFFICIAL_ID and st.meta["resolution"] == 64
    assert st.meta["format"] == "adm-reference-batch" and not st.meta.get("assumed")


def test_biggan_pytorch_moments_are_torchvision_and_refused(tmp_path):
    mu, sigma = mu_sigma()
    np.savez(tmp_path / "I128_inception_moments.npz", mu=mu, sigma=sigma)
    st = read_stats(tmp_path / "I128_inception_moments.npz")
    assert st.extractor_id == TORCHVISION_ID
    with pytest.raises(UsageError, match="torchvision"):
        check_comparable(st, extractor_id=OFFICIAL_ID)
    warnings = check_comparable(st, extractor_id=OFFICIAL_ID, force=True)
    assert warnings and "forced" in warnings[0]


def test_plain_mu_sigma_is_assumed_tf_inception_with_a_warning(tmp_path):
    mu, sigma = mu_sigma()
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
    mu, sigma = mu_sigma(64)
    st = Stats(mu, sigma, meta={"extractor_id": OFFICIAL_ID, "path": "x.npz"})
    for force in (False, True):
        with pytest.raises(UsageError, match="64-dimensional"):
            check_comparable(st, extractor_id=OFFICIAL_ID, force=force)


def test_resolution_mismatch_is_refused_unless_forced():
    mu, sigma = mu_sigma()
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


# ----------------------------------------------------------------------------- image sources


