"""Deterministic random BigGAN-deep weights (bigganctl.models.random_init, behind
``BigGANDeep.random_init_``): the same seed gives the same weights, bit-exact on every machine
(a digest), another seed other weights, positive BN variances, and outputs spread over
[-1, 1] at psi 0.2 and 1.0."""

from __future__ import annotations

import hashlib

import pytest
import torch

from _deep_util import inputs
from _tiny_configs import TINY
from bigganctl.models.biggan_deep import BigGANDeep
from bigganctl.models.config import DEEP_CONFIGS

RANDOM_INIT_DIGEST = "d1c3efb1154bdc0e"


@pytest.mark.numerics
def test_random_init_is_deterministic_and_sane():
    a = BigGANDeep(DEEP_CONFIGS[128]).random_init_(0)
    b = BigGANDeep(DEEP_CONFIGS[128]).random_init_(0)
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    # Bit-exact by construction on every machine (uniforms k / 2**24, one rounding):
    digest = hashlib.sha256(sa["embeddings.weight"].numpy().tobytes()
                            + sa["generator.gen_z.bias"].numpy().tobytes()).hexdigest()
    assert digest.startswith(RANDOM_INIT_DIGEST)
    del b, sb
    c = BigGANDeep(TINY).random_init_(1).state_dict()
    d = BigGANDeep(TINY).random_init_(0).state_dict()
    assert not torch.equal(c["embeddings.weight"], d["embeddings.weight"])
    assert all(bool((sa[k] > 0).all()) for k in sa if k.endswith("running_vars"))
    a.eval()
    with torch.no_grad():
        for psi in (0.2, 1.0):
            z, y, _ = inputs(2, psi)
            x = a(z, y, psi)
            assert not x.isnan().any()
            assert x.min() < -0.6 and x.max() > 0.6 and x.std() > 0.2      # spread over [-1, 1]
