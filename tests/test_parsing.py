import math

import pytest
import torch
from scipy import stats

from bigganctl.errors import UsageError
from bigganctl.generate import to_uint8
from bigganctl.parsing import parse_grid, parse_range, split_csv
from bigganctl.noise import check_psi, truncated_noise


def test_parse_range_examples():
    assert parse_range("0-3,7") == [0, 1, 2, 3, 7]
    assert parse_range(" 5 ") == [5]
    assert parse_range("2-3") == [2, 3]


@pytest.mark.parametrize("bad", ["5-2", "x", "", "1,,2", "-1", "1-x", "3.5"])
def test_parse_range_rejects(bad):
    with pytest.raises(UsageError) as e:
        parse_range(bad)
    assert e.value.param == "seeds"


def test_parse_grid_decimal_exact():
    assert parse_grid("0.1:1.0:0.1") == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert parse_grid("0.2:1.0:0.4") == [0.2, 0.6, 1.0]
    assert parse_grid("0.05:0.3:0.05")[-1] == 0.3          # not 0.30000000000000004
    assert parse_grid("0.2,0.5:0.7:0.1,1,0.2") == [0.2, 0.5, 0.6, 0.7, 1.0]


@pytest.mark.parametrize("bad", ["1.0:0.2:0.1", "0:1:0", "", ",", "a", "0:1", "nan", "0.1:inf:0.1"])
def test_parse_grid_rejects(bad):
    with pytest.raises(UsageError):
        parse_grid(bad)


def test_split_csv():
    assert split_csv(["207,goldfish", "n01443537"]) == ["207", "goldfish", "n01443537"]


def test_to_uint8_single_convention():
    x = torch.tensor([-1.0, -0.999, 0.0, 0.5, 1.0, 1.5, -3.0])
    assert to_uint8(x).tolist() == [0, 0, 128, 191, 255, 255, 0]
    assert to_uint8(x.bfloat16()).tolist() == to_uint8(x.bfloat16().float()).tolist()


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


def test_atomic_write_permissions_and_no_leftovers(tmp_path):
    import os

    from bigganctl._io import atomic_open

    target = tmp_path / "sub" / "out.txt"
    with atomic_open(target, "w") as fh:
        fh.write("ok")
    umask = os.umask(0)
    os.umask(umask)
    assert target.read_text() == "ok"
    assert (target.stat().st_mode & 0o777) == (0o666 & ~umask)
    with pytest.raises(RuntimeError):
        with atomic_open(tmp_path / "sub" / "bad.txt", "w") as fh:
            fh.write("partial")
            raise RuntimeError("boom")
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["out.txt"]


def test_check_psi_absorbs_float_noise_at_one():
    import numpy as np

    assert check_psi(float(np.arange(0.2, 1.1, 0.1)[-1]), "deepmind") == 1.0
