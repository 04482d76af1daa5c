"""Seeded truncated noise (per sample, deterministic, the right distribution for each
truncation convention), the psi check and the class plans (balanced, random with agreeing
prefixes, explicit lists, unknown classes refused)."""

import math

import pytest
import torch
from scipy import stats

from bigganctl.errors import UsageError
from bigganctl.noise import check_psi, class_plan, truncated_noise


def test_truncated_noise_per_sample_and_deterministic():
    a = truncated_noise([3, 4, 5], 128, 0.5)
    b = truncated_noise([5], 128, 0.5)
    assert torch.equal(a[2], b[0])
    assert torch.equal(a, truncated_noise([3, 4, 5], 128, 0.5))
    assert not torch.equal(a[0], a[1])


@pytest.mark.parametrize("convention,psi", [("deepmind", 0.5), ("deepmind", 1.0), ("paper", 0.3), ("paper", 2.0)])
def test_truncated_noise_distribution(convention, psi):
    z = truncated_noise(list(range(800)), 128, psi, convention).double().flatten()  # 102,400 draws
    if convention == "deepmind":
        bound, scale = 2.0 * psi, psi
        a, b = -2.0, 2.0
    else:
        bound, scale = psi, 1.0
        a, b = -psi, psi
    assert z.abs().max() <= bound + 1e-6
    ks = stats.kstest(z.numpy(), stats.truncnorm(a, b, scale=scale).cdf)
    assert ks.pvalue > 1e-3, ks


def test_check_psi():
    assert check_psi(1.0, "deepmind") == 1.0
    assert check_psi(1.5, "paper") == 1.5
    for bad, conv in [(0, "deepmind"), (-0.5, "paper"), (1.5, "deepmind"), (math.nan, "paper")]:
        with pytest.raises(UsageError):
            check_psi(bad, conv)


def test_check_psi_absorbs_float_noise_at_one():
    import numpy as np

    assert check_psi(float(np.arange(0.2, 1.1, 0.1)[-1]), "deepmind") == 1.0


def test_class_plans():
    labels, desc = class_plan("balanced", 25, 10, seed=0)
    assert desc == "balanced" and labels.tolist() == [i % 10 for i in range(25)]
    assert torch.bincount(class_plan("balanced", 50, 10, 0)[0]).tolist() == [5] * 10
    r1, _ = class_plan("random", 30, 10, seed=4)
    r2, _ = class_plan("random", 12, 10, seed=4)
    assert r1[:12].tolist() == r2.tolist() and r1.max() < 10          # prefixes agree
    assert class_plan("random", 30, 10, seed=5)[0].tolist() != r1.tolist()
    lst, desc = class_plan("3,7", 5, 10, seed=0)
    assert lst.tolist() == [3, 7, 3, 7, 3] and desc == [3, 7]
    with pytest.raises(UsageError) as e:
        class_plan([12], 5, 10, seed=0)
    assert e.value.param == "classes"
