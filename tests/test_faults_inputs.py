"""Hostile inputs that define a metric (issue 23): seeds beyond 2**32, image modes, file
names that are not UTF-8, sample counts beyond memory."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bigganctl.errors import UsageError
from bigganctl.sampling import resolve_seeds, seed_uniforms, truncated_noise


# ----------------------------------------------------------------------------- defect 3

def test_seeds_do_not_alias_modulo_2_to_the_32():
    z = truncated_noise([2 ** 32, 0, 2 ** 33 + 7, 7, 2 ** 63 - 1, 2 ** 32 - 1], z_dim=16, psi=1.0)
    assert not torch.equal(z[0], z[1]) and not torch.equal(z[2], z[3])
    assert len({tuple(r.tolist()) for r in z}) == 6
    assert z.abs().max() <= 2.0                                     # still TruncNorm(-2, 2)


def test_seeds_below_2_to_the_32_keep_their_noise():
    for s in (0, 1, 12345, 2 ** 32 - 1):                            # what every earlier version drew
        g = torch.Generator().manual_seed(s)
        assert torch.equal(seed_uniforms(s, 8), torch.rand(8, generator=g, dtype=torch.float64))


def test_large_seed_uniforms_are_uniform_and_reproducible():
    u = seed_uniforms(2 ** 40 + 3, 20000)
    assert u.dtype == torch.float64 and 0 <= float(u.min()) and float(u.max()) < 1
    assert abs(float(u.mean()) - 0.5) < 0.01
    assert torch.equal(u, seed_uniforms(2 ** 40 + 3, 20000))


def test_seeds_beyond_2_to_the_63_are_refused():
    with pytest.raises(UsageError) as e:
        resolve_seeds(seeds=[2 ** 63])
    assert e.value.option == "--seeds"
    with pytest.raises(UsageError) as e:
        resolve_seeds(n=2, seed=2 ** 63 - 1)
    assert e.value.option == "--seed"
