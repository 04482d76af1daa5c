"""BigGAN (not deep), the parameterised generator: the registry's named configs, the psi ->
statistics-row rule, written random checkpoints reproducing random_init_, shapes, range and
batch-size independence, deterministic random init, the psi cache across dtype and reloads,
float32 statistics in a bf16 model. Its three checkpoint formats and the parity with each
reference are in tests/weights/formats/test_{ajbrock,ivclab,tutorial}.py."""

from __future__ import annotations

import pytest
import torch

import _biggan_util
from _biggan_util import inputs
from _tiny_configs import SMALL
from bigganctl.models.biggan import BigGAN, stat_weights
from bigganctl.models.config import AUTHOR_CONFIG_128, TFHUB_CONFIGS, TUTORIAL_CONFIG_128
from bigganctl.weights.formats import ivclab
from bigganctl.weights.registry import get_spec


@pytest.fixture(scope="session")
def small_models(tmp_path_factory):
    return _biggan_util.small_models(tmp_path_factory)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    return ((x.float() + 1) * 127.5).round().clamp(0, 255).to(torch.int16)


#: BigGAN's batched kernels (MKL/oneDNN convolutions and matmuls) are not batch-size
#: invariant, so a sample's float pixels move in the last bits with its batch. Measured
#: (whole batch of 4 vs one at a time, seeds 3-7, the five SMALL configs) under
#: ATEN_CPU_CAPABILITY=avx512|avx2|default x ONEDNN_MAX_CPU_ISA=unset|AVX2 and 1 or 2
#: threads: max |diff| 3.6e-5 (ivclab512, oneDNN AVX2), at most one uint8 level, in at
#: most 0.018 % of the values. The bounds below leave about 3x headroom over that.
#: See docs/development.md, "Numerics".
BATCH_FLOAT_BOUND = 1e-4
BATCH_UINT8_FRACTION = 5e-4


def assert_batch_independent(whole: torch.Tensor, parts: torch.Tensor) -> None:
    """uint8 images at most one level apart in at most 0.05 % of values, floats within the
    measured bound (see above)."""
    d = (to_uint8(whole) - to_uint8(parts)).abs()
    assert d.max() <= 1, d.max()
    assert (d > 0).float().mean().item() <= BATCH_UINT8_FRACTION, (d > 0).float().mean().item()
    assert (whole - parts).abs().max().item() <= BATCH_FLOAT_BOUND


def test_registry_entries_use_the_named_configs():
    assert get_spec("biggan-128").config == AUTHOR_CONFIG_128
    assert get_spec("biggan-tutorial-128").config == TUTORIAL_CONFIG_128
    for res in (128, 256, 512):
        spec = get_spec(f"biggan-tfhub-{res}")
        assert spec.config == TFHUB_CONFIGS[res] and spec.format == "ivclab"
        assert len(ivclab.expected_keys(spec.config)) > 0
    for name in ("biggan-128", "biggan-tfhub-128", "biggan-tfhub-256", "biggan-tfhub-512",
                 "biggan-tutorial-128"):
        spec = get_spec(name)
        assert spec.truncation == spec.config.truncation
        assert spec.resolution == spec.config.resolution


def test_stat_weights_semantics():
    assert stat_weights(0.02, 50) == (0, 0, 0.0)
    assert stat_weights(1.0, 50) == (49, 49, 0.0)
    assert stat_weights(0.05 * 6, 50) == (14, 14, 0.0)      # 0.30000000000000004 snaps
    assert stat_weights(0.28, 50) == (13, 13, 0.0)
    for psi in (0.14, 0.56, 0.58, 0.94):
        assert stat_weights(psi, 50) == (round(psi * 50) - 1,) * 2 + (0.0,)
    i0, i1, frac = stat_weights(0.404, 50)
    assert (i0, i1) == (19, 20) and frac == pytest.approx(0.2)
    assert stat_weights(0.3 + 5e-7 / 50, 50) == (14, 14, 0.0)    # within 1e-6 of the grid
    i0, i1, frac = stat_weights(0.3 + 1e-5, 50)
    assert (i0, i1) == (14, 15) and frac == pytest.approx(5e-4)
    assert stat_weights(0.005, 50) == (0, 0, 0.0)             # below 0.02: row of 0.02
    assert stat_weights(1.7, 50) == (49, 49, 0.0)
    assert stat_weights(0.37, 0) == (0, 0, 0.0)               # single stats set


# ---------------------------------------------------------------------------------------
# Round trip of the written random checkpoints
# ---------------------------------------------------------------------------------------
@pytest.mark.numerics
@pytest.mark.parametrize("name", sorted(SMALL))
def test_written_file_reproduces_the_random_model(name, small_models):
    """write_random_checkpoint stores raw weights at random scales + converged SN vectors;
    folding them gives back random_init_'s weights (the random weights have a clear
    spectral gap, so ajbrock's extra power iteration changes sigma only by rounding)."""
    cfg, model, _ = small_models[name]
    direct = BigGAN(cfg).random_init_(1).eval()
    z, y = inputs(cfg, n=2)
    with torch.no_grad():
        diff = (model(z, y, 0.7) - direct(z, y, 0.7)).abs().max()
    assert diff <= 1e-4


# ---------------------------------------------------------------------------------------
# The model itself: shapes, range, batch-size independence, random init
# ---------------------------------------------------------------------------------------
@pytest.mark.numerics
@pytest.mark.parametrize("name", sorted(SMALL))
def test_shape_range_and_batch_independence(name, small_models):
    cfg, model, _ = small_models[name]
    z, y = inputs(cfg, n=4, seed=3)
    psi = 0.5
    with torch.inference_mode():
        whole = model(z, y, psi)
        parts = torch.cat([model(z[i:i + 1], y[i:i + 1], psi) for i in range(4)])
    assert whole.shape == (4, 3, cfg.resolution, cfg.resolution) and whole.dtype == torch.float32
    assert torch.isfinite(whole).all() and whole.abs().max() <= 1.0
    assert_batch_independent(whole, parts)
    assert model.truncation == cfg.truncation and model.z_dim == cfg.dim_z
    assert model.num_classes == cfg.n_classes and model.resolution == cfg.resolution


@pytest.mark.numerics
@pytest.mark.parametrize("name", ["ajbrock", "ivclab", "seed"])
def test_random_init_is_deterministic_and_sane(name):
    cfg = SMALL[name]
    a, b = BigGAN(cfg).random_init_(3), BigGAN(cfg).random_init_(3)
    c = BigGAN(cfg).random_init_(4)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["blocks.0.conv1.weight"], sc["blocks.0.conv1.weight"])
    z, y = inputs(cfg, n=4, seed=9)
    with torch.inference_mode():
        x = a.eval()(z, y, 1.0)
    assert torch.isfinite(x).all()
    assert x.min() < -0.7 and x.max() > 0.7 and x.std() > 0.25
    # class and noise both matter
    with torch.inference_mode():
        assert (a(z, (y + 1) % cfg.n_classes, 1.0) - x).abs().mean() > 1e-3
        assert (a(z.flip(0), y, 1.0) - x).abs().mean() > 1e-3


def test_psi_cache_follows_dtype_and_reload(small_models):
    cfg, model, _ = small_models["ivclab"]
    z, y = inputs(cfg, n=2)
    m = BigGAN(cfg)
    m.load_state_dict(model.state_dict())
    with torch.inference_mode():
        ref = m(z, y, 0.3)
        half = m.to(torch.bfloat16)(z, y, 0.3)
    assert half.dtype == torch.float32 and (half - ref).abs().mean() < 0.05
    m = m.float()
    m.load_state_dict(BigGAN(cfg).random_init_(11).state_dict())
    with torch.no_grad():
        assert (m(z, y, 0.3) - ref).abs().max() > 1e-2      # no stale statistics


def test_bf16_model_keeps_float32_statistics(small_models):
    """Casting to bf16 leaves the standing statistics float32; the per-psi (mean, 1/std)
    are computed from them and rounded once, to the model's dtype."""
    import copy

    _, model, _ = small_models["ivclab"]
    half = copy.deepcopy(model).to(torch.bfloat16)
    assert half.linear.weight.dtype == torch.bfloat16
    assert {bn.mean.dtype for bn in half._bns()} == {bn.var.dtype for bn in half._bns()} == {torch.float32}
    for (m16, s16), (m32, s32) in zip(half._stats(0.404), model._stats(0.404)):
        assert m16.dtype == torch.bfloat16 and torch.equal(m16, m32.to(torch.bfloat16))
        assert torch.equal(s16, s32.to(torch.bfloat16))
    z = torch.randn(2, model.z_dim)
    assert torch.isfinite(half(z, torch.tensor([1, 2]), 0.5)).all()
