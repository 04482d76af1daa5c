"""The ivclab (TF-Hub port) checkpoint format (bigganctl.weights.formats.ivclab; keys and strict
loading, the contract of all three BigGAN adapters, are in test_biggan.py): the 256/512 layouts, numerical parity with a literal
re-implementation of the reference's eval forward on the psi grid, the correct interpolation
off the grid (where the reference extrapolates), and psi-selected statistics rows.

There is no PyPI package for the ivclab port, so the reference here is a minimal, literal
re-implementation of its eval forward working directly on the FOREIGN state dict (spectral
norm computed the reference's way on every call)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from _biggan_util import TOL, inputs, soft_classes
from bigganctl.models.config import TFHUB_CONFIGS, BigGANConfig
from bigganctl.weights.formats import ivclab


# ---------------------------------------------------------------------------------------
# Reference 2: ivclab/BigGAN-Generator-Pretrained-Pytorch (src/*.py), eval mode.
# ---------------------------------------------------------------------------------------
def ivc_W(sd, p):
    """Its SpectralNorm.compute_weight(do_power_iteration=False), with its flattening."""
    weight = sd[f"{p}.weight_orig"]
    u, v = sd[f"{p}.weight_u"], sd[f"{p}.weight_v"]
    if weight.dim() == 4:
        weight_mat = weight.permute(0, 2, 3, 1).reshape(weight.size(0), -1)
    else:
        weight_mat = weight
    sigma = torch.dot(u, torch.mv(weight_mat, v))
    return weight / sigma


def ivc_get_standing_stats(stack, truncation):
    """CrossReplicaBN2d.get_standing_stats, verbatim in behaviour (swapped-looking alpha)."""
    step = 0.02
    assert 0.02 - 1e-12 <= truncation <= 1.0 + 1e-12
    idx = round((truncation - step) / step)
    residual = truncation - idx * step
    alpha = round(residual / step, 2)
    return torch.sum(torch.cat((alpha * stack[idx:idx + 1], (1.0 - alpha) * stack[idx + 1:idx + 2])), dim=0)


def ivc_lerp_stats(stack, truncation):
    """Correct linear interpolation between rows (row i <-> psi (i + 1) * 0.02)."""
    pos = truncation * stack.shape[0] - 1
    i0 = min(int(pos), stack.shape[0] - 2)
    frac = pos - i0
    return (1 - frac) * stack[i0] + frac * stack[i0 + 1]


def ivc_depth_to_space(x, r):
    n, c, h, w = x.size()
    return x.view(n, r, r, c // r ** 2, h, w).permute(0, 3, 4, 1, 5, 2).reshape(n, c // r ** 2, r * h, r * w)


def ivclab_reference(sd, cfg: BigGANConfig, z, c, truncation, stats=ivc_get_standing_stats):
    """BigGAN{128,256,512}.forward(z, c, truncation); c int labels or soft class vectors."""
    eps = cfg.bn_eps
    n_blocks = cfg.num_blocks
    zs = torch.split(z, cfg.z_chunk_size, dim=1)
    cond = F.embedding(c, sd["linear.weight"]) if c.dim() == 1 else c @ sd["linear.weight"]
    x = F.linear(zs[0], ivc_W(sd, "g_z.g_linear"), sd["g_z.g_linear.bias"])
    x = x.view(z.size(0), cfg.bottom_width, cfg.bottom_width, -1).permute(0, 3, 1, 2)

    def crbn(inp, p, weight=None, bias=None):
        return F.batch_norm(inp, stats(sd[f"{p}.standing_means"], truncation),
                            stats(sd[f"{p}.standing_vars"], truncation), weight, bias, False, 0.0, eps)

    def hyperbn(inp, condition, p):
        n = condition.size(0)
        return (F.linear(condition, ivc_W(sd, f"{p}.gamma")).view(n, -1, 1, 1) + 1) * \
            crbn(inp, f"{p}.crossreplicabn") + F.linear(condition, ivc_W(sd, f"{p}.beta")).view(n, -1, 1, 1)

    def gblock(inp, condition, p):
        sc = torch.cat((inp, inp, inp, inp), dim=1)
        sc = ivc_depth_to_space(sc, r=2)
        sc = F.conv2d(sc, ivc_W(sd, f"{p}.conv_sc"), sd[f"{p}.conv_sc.bias"])
        h = torch.relu(hyperbn(inp, condition, f"{p}.hyperbn"))
        h = ivc_depth_to_space(torch.cat((h, h, h, h), dim=1), r=2)
        h = F.conv2d(h, ivc_W(sd, f"{p}.conv0"), sd[f"{p}.conv0.bias"], padding=1)
        h = torch.relu(hyperbn(h, condition, f"{p}.hyperbn_1"))
        h = F.conv2d(h, ivc_W(sd, f"{p}.conv1"), sd[f"{p}.conv1.bias"], padding=1)
        return sc + h

    def attention(inp):
        n, ch, hh, ww = inp.size()
        g_x = F.max_pool2d(F.conv2d(inp, ivc_W(sd, "attention.g")), kernel_size=2).view(n, -1, hh * ww // 4)
        phi_x = F.max_pool2d(F.conv2d(inp, ivc_W(sd, "attention.phi")), kernel_size=2).view(n, -1, hh * ww // 4)
        theta_x = F.conv2d(inp, ivc_W(sd, "attention.theta")).view(n, -1, hh * ww)
        attn = F.softmax(torch.bmm(theta_x.permute(0, 2, 1), phi_x), dim=-1)
        y = torch.bmm(g_x, attn.permute(0, 2, 1)).view(n, -1, hh, ww)
        return sd["attention.gamma"] * F.conv2d(y, ivc_W(sd, "attention.o_conv")) + inp

    for i in range(n_blocks):
        x = gblock(x, torch.cat((zs[i + 1], cond), dim=1), "gblock" if i == 0 else f"gblock_{i}")
        if i in cfg.attn_blocks:
            x = attention(x)
    x = crbn(x, "scaledcrossreplicabn", sd["scaledcrossreplicabn.weight"], sd["scaledcrossreplicabn.bias"])
    x = F.conv2d(torch.relu(x), ivc_W(sd, "conv_2d"), sd["conv_2d.bias"], padding=1)
    return torch.tanh(x)


# ---------------------------------------------------------------------------------------
# Keys, strict loading, readable errors, parity
# ---------------------------------------------------------------------------------------
def test_tfhub_256_512_layout():
    cfg256, cfg512 = TFHUB_CONFIGS[256], TFHUB_CONFIGS[512]
    k256, k512 = ivclab.expected_keys(cfg256), ivclab.expected_keys(cfg512)
    assert k256["g_z.g_linear.weight_orig"] == (24576, 20) and cfg256.z_chunk_size == 20
    assert k512["g_z.g_linear.weight_orig"] == (24576, 16) and cfg512.z_chunk_size == 16
    assert k256["attention.theta.weight_orig"] == (24, 192, 1, 1)     # 2ch at 128x128
    assert k512["attention.theta.weight_orig"] == (48, 384, 1, 1)     # 4ch at 64x64
    assert k512["gblock_6.conv1.weight_orig"] == (96, 96, 3, 3)
    assert k512["gblock.hyperbn.gamma.weight_orig"] == (1536, 144)
    assert "gblock_7.conv0.bias" not in k512


@pytest.mark.numerics
@pytest.mark.parametrize("name", ["ivclab", "ivclab512"])
def test_ivclab_parity_on_grid(name, small_models):
    cfg, model, foreign = small_models[name]
    z, y = inputs(cfg, n=2)
    soft = soft_classes(cfg)
    worst = 0.0
    with torch.no_grad():
        for psi in (0.02, 0.1, 0.05 * 6, 0.4, 0.5, 0.88, 1.0):
            zp = psi * z
            worst = max(worst, float((model(zp, y, psi) - ivclab_reference(foreign, cfg, zp, y, psi)).abs().max()))
        ours_s, ref_s = model(0.5 * z, soft, 0.5), ivclab_reference(foreign, cfg, 0.5 * z, soft, 0.5)
    assert worst <= TOL
    assert (ours_s - ref_s).abs().max() <= TOL


@pytest.mark.numerics
def test_ivclab_off_grid_psi_interpolates_correctly(small_models):
    """Off the grid bigganctl interpolates the neighbouring rows linearly; the reference's
    own rule extrapolates (psi 0.51 -> 1.5 * row(0.50) - 0.5 * row(0.52))."""
    cfg, model, foreign = small_models["ivclab"]
    z, y = inputs(cfg, n=2)
    with torch.no_grad():
        for psi in (0.404, 0.51, 0.731):
            zp = psi * z
            ours = model(zp, y, psi)
            correct = ivclab_reference(foreign, cfg, zp, y, psi, stats=ivc_lerp_stats)
            theirs = ivclab_reference(foreign, cfg, zp, y, psi)
            assert (ours - correct).abs().max() <= TOL
            if psi == 0.51:
                assert (ours - theirs).abs().max() > 1e-3      # the reference's defect shows
    # psi below the grid: the statistics of psi = 0.02 (no extrapolation)
    with torch.no_grad():
        zp = 0.01 * z
        low = model(zp, y, 0.01)
        at_grid = ivclab_reference(foreign, cfg, zp, y, 0.02)
    assert (low - at_grid).abs().max() <= TOL


@pytest.mark.numerics
def test_ivclab_stat_rows_are_psi_selected(small_models):
    """The model's statistics for psi equal the reference rows (grid) or their lerp."""
    _, model, foreign = small_models["ivclab"]
    means = foreign["gblock_2.hyperbn_1.crossreplicabn.standing_means"]
    bn_index = 2 * 2 + 1                                   # forward order: block 2, bn2
    for psi, want in ((0.5, means[24]), (0.404, 0.8 * means[19] + 0.2 * means[20]),
                      (0.01, means[0]), (1.0, means[49])):
        got = model._stats(psi)[bn_index][0]
        assert torch.allclose(got, want, atol=1e-6)
    assert not torch.allclose(means[0], means[49])
