"""BigGAN (not deep): the parameterised generator and its three checkpoint formats.

There is no PyPI package for ajbrock/BigGAN-PyTorch or the ivclab port, so this file holds
minimal, literal re-implementations of each reference's eval forward that work directly on
the FOREIGN state dict (spectral norm computed the reference's way on every call). The
tutorial layout is checked against modules built like the seed document / Coursera notebook
with ``torch.nn.utils.spectral_norm`` in eval mode.
"""

from __future__ import annotations

import dataclasses
import zipfile
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bigganctl.errors import CheckpointError
from bigganctl.weights.formats import ajbrock, ivclab, tutorial
from bigganctl.testing import ajbrock as ajbrock_writer, ivclab as ivclab_writer, tutorial as tutorial_writer
from bigganctl.models.biggan import BigGAN, stat_weights
from bigganctl.models.config import (AUTHOR_CONFIG_128, TFHUB_CONFIGS, TUTORIAL_CONFIG_128,
                                     TUTORIAL_SEED_CONFIG_128, BigGANConfig)
from bigganctl.weights.registry import get_spec

#: copies of ../shared/data/keys/*.txt (the real modules' state_dict() key lists)
KEYS = Path(__file__).resolve().parents[1] / "data" / "keys"

FORMATS = {"ajbrock": ajbrock, "ivclab": ivclab, "tutorial": tutorial}
FULL = {"ajbrock": AUTHOR_CONFIG_128, "ivclab": TFHUB_CONFIGS[128], "tutorial": TUTORIAL_CONFIG_128}
KEY_FILES = {"ajbrock": "ajbrock_biggan128_G_keys.txt", "ivclab": "ivclab_biggan128_keys.txt",
             "tutorial": "coursera_biggan128_G_keys.txt"}

from _tiny_configs import SMALL, SMALL_FORMAT  # noqa: E402


def read_key_file(name: str) -> list[tuple[str, tuple[int, ...]]]:
    out = []
    for line in (KEYS / name).read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key, shape = line.split("\t")
        out.append((key, tuple(int(s) for s in shape.strip("()").split(",") if s.strip())))
    return out


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
# Fixtures
# ---------------------------------------------------------------------------------------
def _load_model(cfg: BigGANConfig, sd: dict) -> BigGAN:
    m = BigGAN(cfg)
    m.load_state_dict(sd, strict=True)
    return m.eval().requires_grad_(False)


@pytest.fixture(scope="session")
def small_files(tmp_path_factory):
    """One random checkpoint per small config, written in its real format."""
    root = tmp_path_factory.mktemp("biggan_small")
    out = {}
    for name, cfg in SMALL.items():
        writer = {ajbrock: ajbrock_writer, ivclab: ivclab_writer, tutorial: tutorial_writer}[SMALL_FORMAT[name]]
        path = writer.write_random_checkpoint(root / f"{name}.pth", cfg, seed=1)
        out[name] = path
    return out


@pytest.fixture(scope="session")
def small_models(small_files):
    """(config read from the file, model, foreign state dict) per small config."""
    out = {}
    for name, path in small_files.items():
        cfg, sd = SMALL_FORMAT[name].read(path, SMALL[name])
        foreign = torch.load(path, weights_only=True)
        out[name] = (cfg, _load_model(cfg, sd), foreign)
    return out


@pytest.fixture(scope="session")
def full_random_states():
    """A random state dict with exactly the keys and shapes of each shared key list."""
    g = torch.Generator().manual_seed(0)
    out = {}
    for fmt, fname in KEY_FILES.items():
        sd = {}
        for key, shape in read_key_file(fname):
            if key.endswith("num_batches_tracked"):
                sd[key] = torch.tensor(0)
            elif key.endswith(("var", "vars", "sv0")):
                sd[key] = torch.rand(shape, generator=g) + 0.5
            else:
                sd[key] = torch.randn(shape, generator=g)
        out[fmt] = sd
    return out


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


def inputs(cfg: BigGANConfig, n: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, cfg.dim_z, generator=g)
    if cfg.truncation == "deepmind":
        z = z.clamp(-2, 2)
    y = torch.randint(cfg.n_classes, (n,), generator=g)
    return z, y


def soft_classes(cfg: BigGANConfig, n: int = 2, seed: int = 5):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(3 * torch.randn(n, cfg.n_classes, generator=g), dim=1)


# ---------------------------------------------------------------------------------------
# Keys: the shared lists, strict loading, readable errors
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_expected_keys_equal_shared_key_lists(fmt):
    want = read_key_file(KEY_FILES[fmt])
    got = list(FORMATS[fmt].expected_keys(FULL[fmt]).items())
    assert got == want            # names, shapes and the file's order


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


def test_seed_document_flat_layout_keys():
    keys = tutorial.expected_keys(TUTORIAL_SEED_CONFIG_128)
    assert keys["g_blocks.4.gamma"] == () and keys["g_blocks.4.theta.weight_orig"] == (24, 192, 1, 1)
    assert keys["g_blocks.5.conv1.weight_orig"] == (96, 192, 3, 3)
    assert "g_blocks.0.conv_mixin.bias" not in keys and "g_blocks.1.conv_mixin.bias" in keys
    assert keys["proj_o.2.weight_orig"] == (3, 96, 1, 1)
    assert not any(k.startswith("g_blocks.6") for k in keys)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_full_size_random_state_loads_strictly(fmt, full_random_states):
    cfg = FULL[fmt]
    internal = FORMATS[fmt].to_internal(full_random_states[fmt], cfg)
    model = BigGAN(cfg)
    model.load_state_dict(internal, strict=True)       # every internal key, right shapes
    assert all(torch.isfinite(t).all() for t in internal.values())


def _broken(sd, how):
    sd = dict(sd)
    key = sorted(k for k in sd if k.endswith("conv1.bias"))[1]
    if how == "removed":
        del sd[key]
        return sd, [key]
    if how == "renamed":
        sd[key + "_typo"] = sd.pop(key)
        return sd, [key, key + "_typo"]
    sd[key] = torch.zeros(sd[key].shape[0] + 1)
    return sd, [key]


@pytest.mark.parametrize("how", ["removed", "renamed", "misshaped"])
@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_broken_state_dict_names_the_key(fmt, how, full_random_states):
    sd, names = _broken(full_random_states[fmt], how)
    with pytest.raises(CheckpointError) as e:
        FORMATS[fmt].to_internal(sd, FULL[fmt], what="G.pth")
    msg = str(e.value)
    assert e.value.exit_code == 1
    assert msg.startswith("G.pth: ") and all(n in msg for n in names)
    assert len(msg.splitlines()) <= 4                    # one readable error, not a dump


def test_read_refuses_a_file_of_another_format(small_files):
    with pytest.raises(CheckpointError, match="missing"):
        ajbrock.read(small_files["ivclab"], SMALL["ajbrock"])


@pytest.mark.parametrize("name", ["ajbrock", "ivclab", "seed"])
def test_read_from_file_with_broken_key(name, small_files, tmp_path):
    foreign = torch.load(small_files[name], weights_only=True)
    key = next(k for k in foreign if k.endswith("conv1.bias"))
    del foreign[key]
    torch.save(foreign, tmp_path / "broken.pth")
    with pytest.raises(CheckpointError, match=key.replace(".", r"\.")):
        SMALL_FORMAT[name].read(tmp_path / "broken.pth", SMALL[name])


# ---------------------------------------------------------------------------------------
# Numerical parity with each reference (fp32, CPU, max |diff| <= 1e-4)
# ---------------------------------------------------------------------------------------
TOL = 1e-4


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
    _load_model(cfg, sd)


# ---------------------------------------------------------------------------------------
# Round trips, release zip
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
