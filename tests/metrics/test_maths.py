"""Numerical cores: streaming statistics, Fréchet distance, IS and KID (no models, no files)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_fidelity.metric_fid import fid_statistics_to_metric
from torch_fidelity.metric_isc import isc_features_to_metric
from torch_fidelity.metric_kid import kid_features_to_metric

from bigganctl.metrics import maths as S


def _features(n, d, seed, offset=0.3, scale=0.05):
    rng = np.random.default_rng(seed)
    # Inception-like: positive, mean-dominated, correlated dimensions
    mix = rng.standard_normal((d, d)) / np.sqrt(d)
    return (offset + scale * rng.standard_normal((n, d)) @ mix + 0.02 * rng.random(d)).astype(np.float32)


def _stream(f, chunks, dim):
    acc = S.FIDAccumulator(dim)
    lo = 0
    for c in chunks:
        acc.update(torch.from_numpy(f[lo:lo + c]))
        lo += c
    assert lo == len(f)
    return acc


@pytest.mark.numerics
def test_streaming_mean_cov_equals_numpy():
    f = _features(300, 64, 0)
    acc = _stream(f, [1, 7, 64, 100, 128], 64)
    mu, sigma = acc.mean_cov()
    f64 = f.astype(np.float64)
    np.testing.assert_allclose(mu, np.mean(f64, axis=0), rtol=0, atol=1e-10)
    np.testing.assert_allclose(sigma, np.cov(f64, rowvar=False), rtol=0, atol=1e-10)
    assert acc.n == 300 and sigma.dtype == np.float64


@pytest.mark.numerics
def test_streaming_does_not_depend_on_batching_and_merges():
    f = _features(257, 32, 1)
    a = _stream(f, [257], 32).mean_cov()
    b = _stream(f, [3] * 85 + [2], 32).mean_cov()
    left, right = _stream(f[:100], [100], 32), _stream(f[100:], [50, 107], 32)
    left.merge(right)
    c = left.mean_cov()
    for x, y in ((a, b), (a, c)):
        np.testing.assert_allclose(x[0], y[0], atol=1e-12)
        np.testing.assert_allclose(x[1], y[1], atol=1e-12)


def test_accumulator_state_roundtrip():
    f = _features(40, 16, 2)
    acc = _stream(f, [40], 16)
    other = S.FIDAccumulator(16)
    other.load_state_dict(acc.state_dict())
    assert other.n == 40
    np.testing.assert_array_equal(other.mean_cov()[1], acc.mean_cov()[1])


def test_covariance_needs_two_samples():
    acc = S.FIDAccumulator(4)
    acc.update(torch.ones(1, 4))
    with pytest.raises(ValueError):
        acc.mean_cov()


def test_frechet_equal_covariances_is_squared_mean_distance():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((16, 16))
    sigma = a @ a.T + 0.1 * np.eye(16)
    mu1, mu2 = rng.standard_normal(16), rng.standard_normal(16)
    assert S.frechet_distance(mu1, sigma, mu2, sigma) == pytest.approx(float(((mu1 - mu2) ** 2).sum()), rel=1e-9)


def test_frechet_identical_sets_is_zero():
    f = _features(500, 64, 4).astype(np.float64)
    mu, sigma = f.mean(0), np.cov(f, rowvar=False)
    assert abs(S.frechet_distance(mu, sigma, mu, sigma)) < 1e-10


def test_frechet_diagonal_closed_form():
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    mu1, mu2 = np.zeros(3), np.array([1.0, 0.0, 2.0])
    expected = 1 + 4 + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert S.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)


@pytest.mark.numerics
@pytest.mark.parametrize("n", [200, 1000])
def test_frechet_matches_torch_fidelity_full_rank(n):
    f1, f2 = _features(n, 64, 5).astype(np.float64), _features(n, 64, 6, offset=0.32).astype(np.float64)
    s1 = {"mu": f1.mean(0), "sigma": np.cov(f1, rowvar=False)}
    s2 = {"mu": f2.mean(0), "sigma": np.cov(f2, rowvar=False)}
    ref = fid_statistics_to_metric(s1, s2, verbose=False)["frechet_inception_distance"]
    ours = S.frechet_distance(s1["mu"], s1["sigma"], s2["mu"], s2["sigma"])
    assert ours == pytest.approx(ref, rel=1e-9)


def test_frechet_exact_on_rank_deficient_covariances():
    """N < dim: the trace term equals the nuclear norm of A B^T / (n-1) (A, B centred features).
    torch-fidelity's general eigensolver adds square roots of round-off eigenvalues of the
    null space here; the symmetric form drops the null space exactly."""
    n, d = 20, 256
    f1, f2 = _features(n, d, 7).astype(np.float64), _features(n, d, 8, offset=0.31).astype(np.float64)
    a, b = f1 - f1.mean(0), f2 - f2.mean(0)
    exact = (((f1.mean(0) - f2.mean(0)) ** 2).sum() + (a * a).sum() / (n - 1) + (b * b).sum() / (n - 1)
             - 2 * np.linalg.svd(a @ b.T, compute_uv=False).sum() / (n - 1))
    ours = S.frechet_distance(f1.mean(0), np.cov(f1, rowvar=False), f2.mean(0), np.cov(f2, rowvar=False))
    assert ours == pytest.approx(exact, rel=1e-9)
    acc = _stream(f1.astype(np.float32), [7, 13], d)          # the accumulator's row-space route
    assert acc.centered_rows().shape == (n, d)
    rows = acc.frechet_distance(f2.mean(0), np.cov(f2, rowvar=False))
    f1_32 = f1.astype(np.float32).astype(np.float64)
    no_rows = S.frechet_distance(f1_32.mean(0), np.cov(f1_32, rowvar=False), f2.mean(0), np.cov(f2, rowvar=False))
    assert rows == pytest.approx(no_rows, rel=1e-9)


def test_accumulator_drops_rows_beyond_dim():
    acc = _stream(_features(40, 16, 11), [10, 6, 24], 16)
    assert acc.rows is None and acc.centered_rows() is None and acc.n == 40
    small = _stream(_features(16, 16, 11), [16], 16)
    assert small.centered_rows().shape == (16, 16)


def test_frechet_rejects_mismatched_shapes():
    with pytest.raises(ValueError):
        S.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


@pytest.mark.numerics
@pytest.mark.parametrize("n", [10, 37, 100])
@pytest.mark.parametrize("shuffle", [True, False])
def test_inception_score_streaming_equals_torch_fidelity(n, shuffle):
    logits = torch.randn(n, 1008, generator=torch.Generator().manual_seed(n)) * 3
    ref = isc_features_to_metric(logits, splits=10, shuffle=shuffle, rng_seed=2020)
    acc = S.ISAccumulator(n, 1008, splits=10, shuffle=shuffle)
    for lo in range(0, n, 7):                       # uneven chunks, global indices
        acc.update(logits[lo:lo + 7], lo)
    mean, std = acc.result()
    assert mean == pytest.approx(ref["inception_score_mean"], rel=1e-10)
    assert std == pytest.approx(ref["inception_score_std"], rel=1e-8, abs=1e-12)


@pytest.mark.numerics
def test_inception_score_split_sizes_match_torch_fidelity():
    n = 53
    split = S.is_split_of(n, 10)
    sizes = np.bincount(split, minlength=10)
    assert list(sizes) == [(i + 1) * n // 10 - i * n // 10 for i in range(10)]
    perm = np.random.RandomState(2020).permutation(n)
    assert split[perm[0]] == 0 and split[perm[-1]] == 9      # first/last of the shuffled order


def test_inception_score_needs_as_many_samples_as_splits():
    with pytest.raises(ValueError):
        S.ISAccumulator(9, 1008, splits=10)


@pytest.mark.numerics
def test_kid_equals_torch_fidelity_and_refuses_large_subsets():
    f1 = torch.from_numpy(_features(60, 32, 9))
    f2 = torch.from_numpy(_features(50, 32, 10, offset=0.35))
    ref = kid_features_to_metric(f1, f2, kid_subsets=20, kid_subset_size=40, rng_seed=2020, verbose=False)
    assert S.kid(f1, f2, subsets=20, subset_size=40) == (
        ref["kernel_inception_distance_mean"], ref["kernel_inception_distance_std"])
    with pytest.raises(ValueError):
        S.kid(f1, f2, subsets=2, subset_size=51)
