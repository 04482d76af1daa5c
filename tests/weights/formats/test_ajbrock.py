"""The ajbrock/BigGAN-PyTorch checkpoint format (bigganctl.weights.formats.ajbrock; the contract
all three BigGAN adapters keep, keys and strict loading, is in test_biggan.py): a file of
another format is refused, numerical
parity with a literal re-implementation of the reference's eval forward (class indices and
soft class vectors), the 2019 release zip of legacy torch pickles, the fixed output BN eps.

There is no PyPI package for ajbrock/BigGAN-PyTorch, so the reference here is a minimal,
literal re-implementation of its eval forward working directly on the FOREIGN state dict
(spectral norm computed the reference's way on every call)."""

from __future__ import annotations

import dataclasses
import zipfile

import pytest
import torch
import torch.nn.functional as F

from _biggan_util import TOL, inputs, soft_classes
from _tiny_configs import SMALL
from bigganctl.errors import CheckpointError
from bigganctl.models.config import BigGANConfig
from bigganctl.weights.formats import ajbrock


# ---------------------------------------------------------------------------------------
# Reference 1: ajbrock/BigGAN-PyTorch (BigGAN.Generator + layers.py), eval mode.
# ---------------------------------------------------------------------------------------
def ajb_W(sd, p, eps):
    """layers.SN.W_() in eval: one power iteration from u0 (not stored back)."""
    W = sd[f"{p}.weight"]
    W_mat = W.view(W.size(0), -1)
    u = sd[f"{p}.u0"]
    v = F.normalize(torch.matmul(u, W_mat), eps=eps)
    u = F.normalize(torch.matmul(v, W_mat.t()), eps=eps)
    sv = torch.squeeze(torch.matmul(torch.matmul(v, W_mat.t()), u.t()))
    return W / sv


def ajb_attention(sd, p, x, eps):
    ch = x.shape[1]
    theta = F.conv2d(x, ajb_W(sd, f"{p}.theta", eps))
    phi = F.max_pool2d(F.conv2d(x, ajb_W(sd, f"{p}.phi", eps)), [2, 2])
    g = F.max_pool2d(F.conv2d(x, ajb_W(sd, f"{p}.g", eps)), [2, 2])
    theta = theta.view(-1, ch // 8, x.shape[2] * x.shape[3])
    phi = phi.view(-1, ch // 8, x.shape[2] * x.shape[3] // 4)
    g = g.view(-1, ch // 2, x.shape[2] * x.shape[3] // 4)
    beta = F.softmax(torch.bmm(theta.transpose(1, 2), phi), -1)
    o = F.conv2d(torch.bmm(g, beta.transpose(1, 2)).view(-1, ch // 2, x.shape[2], x.shape[3]),
                 ajb_W(sd, f"{p}.o", eps))
    return sd[f"{p}.gamma"] * o + x


def ajbrock_reference(sd, cfg: BigGANConfig, z, y):
    """G(z, G.shared(y)) with y int labels or soft vectors (interpolated embeddings)."""
    eps = cfg.sn_eps
    y = F.embedding(y, sd["shared.weight"]) if y.dim() == 1 else y @ sd["shared.weight"]
    zs = torch.split(z, cfg.z_chunk_size, 1)
    z = zs[0]
    ys = [torch.cat([y, item], 1) for item in zs[1:]]
    h = F.linear(z, ajb_W(sd, "linear", eps), sd["linear.bias"])
    h = h.view(h.size(0), -1, cfg.bottom_width, cfg.bottom_width)

    def ccbn(x, yy, p):
        gain = (1 + F.linear(yy, ajb_W(sd, f"{p}.gain", eps))).view(yy.size(0), -1, 1, 1)
        bias = F.linear(yy, ajb_W(sd, f"{p}.bias", eps)).view(yy.size(0), -1, 1, 1)
        out = F.batch_norm(x, sd[f"{p}.stored_mean"], sd[f"{p}.stored_var"], None, None,
                           False, 0.1, cfg.bn_eps)
        return out * gain + bias

    for index in range(cfg.num_blocks):
        p = f"blocks.{index}.0"
        x = h
        hh = F.relu(ccbn(x, ys[index], f"{p}.bn1"))
        hh = F.interpolate(hh, scale_factor=2)
        x = F.interpolate(x, scale_factor=2)
        hh = F.conv2d(hh, ajb_W(sd, f"{p}.conv1", eps), sd[f"{p}.conv1.bias"], padding=1)
        hh = F.relu(ccbn(hh, ys[index], f"{p}.bn2"))
        hh = F.conv2d(hh, ajb_W(sd, f"{p}.conv2", eps), sd[f"{p}.conv2.bias"], padding=1)
        x = F.conv2d(x, ajb_W(sd, f"{p}.conv_sc", eps), sd[f"{p}.conv_sc.bias"])
        h = hh + x
        if f"blocks.{index}.1.gamma" in sd:
            h = ajb_attention(sd, f"blocks.{index}.1", h, eps)
    h = F.batch_norm(h, sd["output_layer.0.stored_mean"], sd["output_layer.0.stored_var"],
                     sd["output_layer.0.gain"], sd["output_layer.0.bias"], False, 0.1, 1e-5)
    h = F.conv2d(F.relu(h), ajb_W(sd, "output_layer.2", eps), sd["output_layer.2.bias"], padding=1)
    return torch.tanh(h)


# ---------------------------------------------------------------------------------------
# Keys, strict loading, readable errors, parity
# ---------------------------------------------------------------------------------------
def test_read_refuses_a_file_of_another_format(small_files):
    with pytest.raises(CheckpointError, match="missing"):
        ajbrock.read(small_files["ivclab"], SMALL["ajbrock"])


@pytest.mark.numerics
def test_ajbrock_parity(small_models):
    cfg, model, foreign = small_models["ajbrock"]
    z, y = inputs(cfg)
    with torch.no_grad():
        ours, ref = model(z, y, 1.0), ajbrock_reference(foreign, cfg, z, y)
        soft = soft_classes(cfg)
        ours_s, ref_s = model(z[:2], soft, 1.0), ajbrock_reference(foreign, cfg, z[:2], soft)
    assert ref.std() > 0.2
    assert (ours - ref).abs().max() <= TOL
    assert (ours_s - ref_s).abs().max() <= TOL


def test_ajbrock_release_zip(small_files, tmp_path):
    """The 2019 release zip holds legacy-format (pre-1.6, non-zip) torch pickles."""
    legacy = tmp_path / "G_ema_legacy.pth"
    torch.save(torch.load(small_files["ajbrock"], weights_only=True), legacy,
               _use_new_zipfile_serialization=False)
    assert not zipfile.is_zipfile(legacy)
    path = tmp_path / "BigGAN_ch96_bs256x8_138k.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.write(legacy, "138k/G_ema.pth")
        zf.writestr("138k/state_dict.pth", b"not used")
    cfg, sd = ajbrock.read(path, SMALL["ajbrock"])
    _, direct = ajbrock.read(small_files["ajbrock"], SMALL["ajbrock"])
    assert sd.keys() == direct.keys() and all(torch.equal(sd[k], direct[k]) for k in sd)
    _, from_legacy = ajbrock.read(legacy, SMALL["ajbrock"])
    assert all(torch.equal(from_legacy[k], direct[k]) for k in sd)
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("readme.txt", "x")
    with pytest.raises(CheckpointError, match="G_ema.pth"):
        ajbrock.read(empty, SMALL["ajbrock"])


def test_ajbrock_output_bn_eps_is_fixed_by_the_reference():
    cfg = dataclasses.replace(SMALL["ajbrock"], bn_eps=1e-4)
    assert ajbrock.file_config(cfg).output_bn_eps == 1e-5
    assert ajbrock.file_config(SMALL["ajbrock"]).out_bn_eps is None
