"""The tutorial (seed document / Coursera notebook) checkpoint format
(bigganctl.weights.formats.tutorial; keys and strict loading, the contract of all three
BigGAN adapters, are in test_biggan.py): the seed document's flat layout, numerical parity with modules built like the notebook's (torch
spectral_norm, eval mode), and the layout taken from the file rather than the spec."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from _biggan_util import TOL, inputs, load_model, soft_classes
from _tiny_configs import SMALL
from bigganctl.models.config import TUTORIAL_SEED_CONFIG_128, BigGANConfig
from bigganctl.weights.formats import tutorial

# ---------------------------------------------------------------------------------------
# Reference 3: the seed document's / Coursera notebook's modules (torch spectral_norm).
# ---------------------------------------------------------------------------------------
SN = nn.utils.spectral_norm


class RefCCBN(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.bn = nn.BatchNorm2d(out_channels)
        self.class_scale_transform = SN(nn.Linear(in_channels, out_channels, bias=False))
        self.class_shift_transform = SN(nn.Linear(in_channels, out_channels, bias=False))

    def forward(self, x, y):
        return (1 + self.class_scale_transform(y))[:, :, None, None] * self.bn(x) + \
            self.class_shift_transform(y)[:, :, None, None]


class RefGResidualBlock(nn.Module):
    def __init__(self, c_dim, in_channels, out_channels):
        super().__init__()
        self.conv1 = SN(nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1))
        self.conv2 = SN(nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1))
        self.bn1 = RefCCBN(c_dim, in_channels)
        self.bn2 = RefCCBN(c_dim, out_channels)
        self.activation = nn.ReLU()
        self.upsample_fn = nn.Upsample(scale_factor=2)
        self.mixin = in_channels != out_channels
        if self.mixin:
            self.conv_mixin = SN(nn.Conv2d(in_channels, out_channels, kernel_size=1, padding=0))

    def forward(self, x, y):
        h = self.conv1(self.upsample_fn(self.activation(self.bn1(x, y))))
        h = self.conv2(self.activation(self.bn2(h, y)))
        x = self.upsample_fn(x)
        if self.mixin:
            x = self.conv_mixin(x)
        return h + x


class RefAttentionBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.channels = channels
        self.theta = SN(nn.Conv2d(channels, channels // 8, kernel_size=1, padding=0, bias=False))
        self.phi = SN(nn.Conv2d(channels, channels // 8, kernel_size=1, padding=0, bias=False))
        self.g = SN(nn.Conv2d(channels, channels // 2, kernel_size=1, padding=0, bias=False))
        self.o = SN(nn.Conv2d(channels // 2, channels, kernel_size=1, padding=0, bias=False))
        self.gamma = nn.Parameter(torch.tensor(0.))

    def forward(self, x):
        spatial_size = x.shape[2] * x.shape[3]
        theta = self.theta(x).view(-1, self.channels // 8, spatial_size)
        phi = F.max_pool2d(self.phi(x), kernel_size=2).view(-1, self.channels // 8, spatial_size // 4)
        g = F.max_pool2d(self.g(x), kernel_size=2).view(-1, self.channels // 2, spatial_size // 4)
        beta = F.softmax(torch.bmm(theta.transpose(1, 2), phi), dim=-1)
        o = self.o(torch.bmm(g, beta.transpose(1, 2)).view(-1, self.channels // 2, x.shape[2], x.shape[3]))
        return self.gamma * o + x


class RefTutorialGenerator(nn.Module):
    """Coursera (nested [block, attention]) or the seed document (flat list) layout."""

    def __init__(self, cfg: BigGANConfig, nested: bool):
        super().__init__()
        base, bw = cfg.ch, cfg.bottom_width
        self.z_chunk_size, self.bottom_width, self.nested = cfg.z_chunk_size, bw, nested
        self.shared_emb = nn.Embedding(cfg.n_classes, cfg.shared_dim)
        self.proj_z = nn.Linear(self.z_chunk_size, cfg.in_mult[0] * base * bw ** 2)
        mods = []
        for i in range(cfg.num_blocks):
            cin, cout = cfg.block_channels(i)
            unit = [RefGResidualBlock(cfg.cond_dim, cin, cout)]
            if i in cfg.attn_blocks:
                unit.append(RefAttentionBlock(cout))
            mods.append(nn.ModuleList(unit) if nested else unit)
        self.g_blocks = nn.ModuleList(mods if nested else [m for unit in mods for m in unit])
        self.proj_o = nn.Sequential(nn.BatchNorm2d(base * cfg.out_mult[-1]), nn.ReLU(inplace=True),
                                    SN(nn.Conv2d(base * cfg.out_mult[-1], 3, kernel_size=1, padding=0)),
                                    nn.Tanh())

    def forward(self, z, y):
        y = self.shared_emb(y) if y.dim() == 1 else y @ self.shared_emb.weight
        zs = torch.split(z, self.z_chunk_size, dim=1)
        ys = [torch.cat([y, zz], dim=1) for zz in zs[1:]]
        h = self.proj_z(zs[0]).view(z.size(0), -1, self.bottom_width, self.bottom_width)
        idx = 0
        units = self.g_blocks if self.nested else [[m] for m in self.g_blocks]
        for unit in units:
            for m in unit:
                if isinstance(m, RefAttentionBlock):
                    h = m(h)
                else:
                    h = m(h, ys[idx])
                    idx += 1
        return self.proj_o(h)


def tutorial_reference(sd, cfg, nested, z, y):
    ref = RefTutorialGenerator(cfg, nested)
    ref.load_state_dict(sd, strict=True)
    return ref.eval()(z, y)


# ---------------------------------------------------------------------------------------
# Keys, strict loading, readable errors, parity
# ---------------------------------------------------------------------------------------
def test_seed_document_flat_layout_keys():
    keys = tutorial.expected_keys(TUTORIAL_SEED_CONFIG_128)
    assert keys["g_blocks.4.gamma"] == () and keys["g_blocks.4.theta.weight_orig"] == (24, 192, 1, 1)
    assert keys["g_blocks.5.conv1.weight_orig"] == (96, 192, 3, 3)
    assert "g_blocks.0.conv_mixin.bias" not in keys and "g_blocks.1.conv_mixin.bias" in keys
    assert keys["proj_o.2.weight_orig"] == (3, 96, 1, 1)
    assert not any(k.startswith("g_blocks.6") for k in keys)


@pytest.mark.numerics
@pytest.mark.parametrize("name", ["coursera", "seed"])
def test_tutorial_parity(name, small_models):
    cfg, model, foreign = small_models[name]
    nested = name == "coursera"
    assert tutorial.infer_layout(foreign, SMALL[name]) == (SMALL[name], nested)
    z, y = inputs(cfg, n=2)
    soft = soft_classes(cfg)
    with torch.no_grad():
        ours, ref = model(z, y, 1.0), tutorial_reference(foreign, cfg, nested, z, y)
        ours_s, ref_s = model(z, soft, 1.0), tutorial_reference(foreign, cfg, nested, z, soft)
    assert ref.std() > 0.2
    assert (ours - ref).abs().max() <= TOL
    assert (ours_s - ref_s).abs().max() <= TOL


def test_tutorial_read_takes_layout_from_the_file(small_files):
    """A seed-layout file read with the Coursera spec config still loads (flat, one attention)."""
    base = dataclasses.replace(SMALL["seed"], attn_res=(8, 16, 32, 64, 128))
    cfg, sd = tutorial.read(small_files["seed"], base)
    assert cfg.attn_res == (64,) and cfg == SMALL["seed"]
    load_model(cfg, sd)
