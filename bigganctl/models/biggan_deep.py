"""BigGAN-deep (DeepMind TF-Hub models in the Hugging Face port's layout), spectral norm folded.

Parameter and buffer names are the Hugging Face state-dict keys with spectral norm folded
(``generator.gen_z.weight`` instead of ``weight_orig``/``weight_u``/``weight_v``), so
:mod:`bigganctl.formats.hf` converts with a one-line key map.

Forward (as the HF port): ``cond = cat(z, embed(y))`` -> linear to 4x4x16ch viewed NHWC ->
bottleneck blocks (self-attention before block ``attention_layer_position``) -> BN, ReLU,
3x3 conv -> channels [:3] -> tanh. Every batch norm uses *stored* per-truncation
statistics: row i of ``running_means``/``running_vars`` holds psi = i / (n_stats - 1).
Unlike the HF port, the row is chosen correctly (:func:`stat_position`).

Speed: no spectral norm at run time (folded at load); the per-psi BN statistics are
reduced once to ``(mean, 1/sqrt(var + eps))`` and cached; all conditional-BN scale/offset
linears run as one matmul; a BN + ReLU is one ``addcmul`` and an in-place ReLU;
upsample-then-3x3-conv runs as four 2x2 phase convs on the small input (no upsampled copy,
16 instead of 36 multiply-adds per pixel); the RGB conv computes only the 3 kept channels.

Batch-size independence: on the CPU, the matmuls and the 4x4 convs (where oneDNN/MKL pick
batch-size-dependent kernels) run one sample at a time, so a sample's pixels are
bit-identical in any batch. On accelerators and under torch.compile (:meth:`BigGANDeep.core`,
psi-free) everything is batched (equal to float rounding; docs/performance.md).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from .base import Generator
from .config import BigGANDeepConfig

#: Two stat positions closer than this (in rows) are the same row: psi = 0.28 -> row 14.
SNAP_TOL = 1e-6


def stat_position(psi: float, n_stats: int) -> tuple[int, float]:
    """Which stored BN statistics a truncation psi uses: ``(row, frac)``.

    ``pos = psi * (n_stats - 1)``; within ``SNAP_TOL`` of an integer it snaps to that row
    (``frac == 0``), otherwise statistics are ``row * (1 - frac) + (row + 1) * frac``.

    >>> stat_position(0.28, 51)
    (14, 0.0)
    >>> stat_position(0.404, 51)[0], round(stat_position(0.404, 51)[1], 6)
    (20, 0.2)
    """
    psi = float(psi)
    last = n_stats - 1
    pos = psi * last
    if not math.isfinite(pos) or pos < -SNAP_TOL or pos > last + SNAP_TOL:
        raise ValueError(f"psi must be in (0, 1] for BigGAN-deep, got {psi}")
    nearest = round(pos)
    if abs(pos - nearest) <= SNAP_TOL:
        return int(nearest), 0.0
    row = math.floor(pos)
    return int(row), pos - row


def interpolate_stats(stats: torch.Tensor, row: int, frac: float) -> torch.Tensor:
    """Row ``row`` of ``stats`` [n_stats, C], or its linear interpolation towards ``row + 1``
    (float64)."""
    s = stats.double()
    if frac == 0.0:
        return s[row]
    return s[row] * (1.0 - frac) + s[row + 1] * frac


# ----------------------------------------------------------------------------- layers
# Minimal modules: they own the parameters under the HF names; BigGANDeep.synthesize does
# the math functionally.

#: On the CPU, convolutions at or below this spatial size run one sample at a time: oneDNN
#: picks batch-size-dependent algorithms for them, which would make a sample's pixels
#: depend on its batch. (Larger convolutions, measured, do not.) They are cheap.
_PER_SAMPLE_MAX_SIZE = 4


def _per_sample(x: torch.Tensor) -> bool:
    """Run the batch-shape-sensitive kernels one sample at a time? On the CPU in eager
    mode, yes; under torch.compile the graph is batched (one static shape; outputs equal
    eager within the uint8 rule, see docs/performance.md)."""
    return x.device.type == "cpu" and not torch.compiler.is_compiling()


def _rows(fn, x: torch.Tensor, per_sample: bool) -> torch.Tensor:
    """``fn(x)``, or ``fn`` applied to each sample separately (batch-size-invariant bits)."""
    if per_sample and x.shape[0] > 1:
        return torch.cat([fn(x[i:i + 1]) for i in range(x.shape[0])])
    return fn(x)


class _Linear(nn.Module):
    def __init__(self, in_f: int, out_f: int, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(out_f, in_f))
        self.bias = nn.Parameter(torch.zeros(out_f)) if bias else None


class _Conv(nn.Module):
    def __init__(self, in_c: int, out_c: int, k: int, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(out_c, in_c, k, k))
        self.bias = nn.Parameter(torch.zeros(out_c)) if bias else None
        self.padding = k // 2
        self._phases: tuple | None = None     # derived: see up2x_forward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        per_sample = _per_sample(x) and x.shape[-1] <= _PER_SAMPLE_MAX_SIZE
        return _rows(lambda t: F.conv2d(t, self.weight, self.bias, padding=self.padding), x, per_sample)

    def up2x_forward(self, x: torch.Tensor) -> torch.Tensor:
        """``conv3x3(nearest_upsample_2x(x))`` without upsampling: each of the four output
        phases (row parity a, column parity b) is a 2x2 conv of ``x`` whose taps are sums of
        the 3x3 taps. All four run as one conv with 4x the output channels on ``x`` padded
        by 1; 16 instead of 36 multiply-adds per output pixel and no upsampled copy."""
        b, _, h, w = x.shape
        weight, bias = self._phase_weights()
        per_sample = _per_sample(x) and w <= _PER_SAMPLE_MAX_SIZE
        y = _rows(lambda t: F.conv2d(F.pad(t, (1, 1, 1, 1)), weight, bias), x, per_sample)
        y = y.view(b, 2, 2, -1, h + 1, w + 1)                    # [B, a, b, O, H+1, W+1]
        out = x.new_empty(b, y.shape[3], h, 2, w, 2)
        for pa in (0, 1):
            for pb in (0, 1):
                out[:, :, :, pa, :, pb] = y[:, pa, pb, :, pa:pa + h, pb:pb + w]
        return out.view(b, -1, 2 * h, 2 * w)

    def _phase_weights(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        if torch.compiler.is_compiling() or (torch.is_grad_enabled() and self.weight.requires_grad):
            return _phase_kernels(self.weight, self.bias)       # part of the graph
        stamp = (self.weight.data_ptr(), self.weight._version, self.weight.dtype,
                 None if self.bias is None else (self.bias.data_ptr(), self.bias._version))
        if self._phases is None or self._phases[0] != stamp:
            with torch.inference_mode(False), torch.no_grad():
                self._phases = (stamp, *_phase_kernels(self.weight, self.bias))
        return self._phases[1], self._phases[2]


def _phase_kernels(w: torch.Tensor, bias: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """3x3 kernel [O, I, 3, 3] -> the four 2x2 phase kernels [4O, I, 2, 2] of
    upsample-then-conv, phases (0,0), (0,1), (1,0), (1,1). Along one axis, output parity 0
    reads input rows (i-1, i) with taps (k0, k1 + k2); parity 1 reads (i, i+1) with
    (k0 + k1, k2)."""
    def split(t: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
        k0, k1, k2 = t.unbind(dim)
        return torch.stack([k0, k1 + k2], dim), torch.stack([k0 + k1, k2], dim)

    rows = split(w, 2)
    kernels = [k for r in rows for k in split(r, 3)]
    return torch.cat(kernels, 0), (None if bias is None else bias.repeat(4))


class _BatchNorm(nn.Module):
    """Batch norm with stored per-truncation statistics; conditional (scale/offset are
    bias-free linears of the condition vector) or plain affine (weight/bias)."""

    def __init__(self, num_features: int, n_stats: int, cond_dim: int | None):
        super().__init__()
        self.num_features = num_features
        self.register_buffer("running_means", torch.zeros(n_stats, num_features))
        self.register_buffer("running_vars", torch.ones(n_stats, num_features))
        self.conditional = cond_dim is not None
        if self.conditional:
            self.scale = _Linear(cond_dim, num_features, bias=False)
            self.offset = _Linear(cond_dim, num_features, bias=False)
        else:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))


def _bn_relu(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``relu(x * a + b)`` with per-sample, per-channel ``a``, ``b`` [B or 1, C]; a batch norm
    ``(x - mean) * rstd * gain + bias`` is ``a = gain * rstd``, ``b = bias - mean * a``."""
    return torch.addcmul(b[:, :, None, None], x, a[:, :, None, None]).relu_()


class _GenBlock(nn.Module):
    """Bottleneck residual block (reduction 4): 1x1 / [up] 3x3 / 3x3 / 1x1, each after
    cBN + ReLU. Skip: the first half of the channels when the count drops, then upsample."""

    def __init__(self, in_c: int, out_c: int, cond_dim: int, up: bool, n_stats: int):
        super().__init__()
        mid = in_c // 4
        self.up = up
        self.drop_channels = in_c != out_c
        self.bn_0 = _BatchNorm(in_c, n_stats, cond_dim)
        self.conv_0 = _Conv(in_c, mid, 1)
        self.bn_1 = _BatchNorm(mid, n_stats, cond_dim)
        self.conv_1 = _Conv(mid, mid, 3)
        self.bn_2 = _BatchNorm(mid, n_stats, cond_dim)
        self.conv_2 = _Conv(mid, mid, 3)
        self.bn_3 = _BatchNorm(mid, n_stats, cond_dim)
        self.conv_3 = _Conv(mid, out_c, 1)

    def bns(self) -> tuple[_BatchNorm, ...]:
        return self.bn_0, self.bn_1, self.bn_2, self.bn_3

    def run(self, x: torch.Tensor, ab: Iterator[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        h = self.conv_0(_bn_relu(x, *next(ab)))
        h = _bn_relu(h, *next(ab))
        h = self.conv_1.up2x_forward(h) if self.up else self.conv_1(h)
        h = self.conv_2(_bn_relu(h, *next(ab)))
        h = self.conv_3(_bn_relu(h, *next(ab)))
        skip = x[:, : x.shape[1] // 2] if self.drop_channels else x
        if self.up:
            skip = F.interpolate(skip, scale_factor=2, mode="nearest")
        return h.add_(skip)


class _SelfAttn(nn.Module):
    """SA-GAN non-local block: theta, phi (C/8), g (C/2) 1x1 convs, phi and g 2x2
    max-pooled, ``x + gamma * o(g softmax(theta^T phi)^T)``."""

    def __init__(self, ch: int):
        super().__init__()
        self.snconv1x1_theta = _Conv(ch, ch // 8, 1, bias=False)
        self.snconv1x1_phi = _Conv(ch, ch // 8, 1, bias=False)
        self.snconv1x1_g = _Conv(ch, ch // 2, 1, bias=False)
        self.snconv1x1_o_conv = _Conv(ch // 2, ch, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        theta = self.snconv1x1_theta(x).flatten(2)                          # [B, C/8, HW]
        phi = F.max_pool2d(self.snconv1x1_phi(x), 2).flatten(2)             # [B, C/8, HW/4]
        g = F.max_pool2d(self.snconv1x1_g(x), 2).flatten(2)                 # [B, C/2, HW/4]
        attn = torch.softmax(torch.bmm(theta.transpose(1, 2), phi), dim=-1)  # [B, HW, HW/4]
        o = torch.bmm(g, attn.transpose(1, 2)).view(b, -1, h, w)            # [B, C/2, H, W]
        return torch.addcmul(x, self.gamma, self.snconv1x1_o_conv(o))


class _Trunk(nn.Module):
    """``generator.*`` of the HF layout."""

    def __init__(self, cfg: BigGANDeepConfig):
        super().__init__()
        ch = cfg.channel_width
        cond_dim = 2 * cfg.z_dim
        self.gen_z = _Linear(cond_dim, 4 * 4 * 16 * ch)
        layers: list[nn.Module] = []
        for i, (up, in_m, out_m) in enumerate(cfg.layers):
            if i == cfg.attention_layer_position:
                layers.append(_SelfAttn(ch * in_m))
            layers.append(_GenBlock(ch * in_m, ch * out_m, cond_dim, up, cfg.n_stats))
        self.layers = nn.ModuleList(layers)
        self.bn = _BatchNorm(ch, cfg.n_stats, None)
        self.conv_to_rgb = _Conv(ch, ch, 3)


# ----------------------------------------------------------------------------- model

class BigGANDeep(Generator):
    """BigGAN-deep generator; ``G(z, y, psi)`` with z [B, z_dim], y classes, psi in (0, 1].

    Derived data, rebuilt when what it derives from changes (parameter/buffer versions,
    ``.to()``, ``load_state_dict``): the per-psi BN statistics (LRU of ``_CACHE_SIZE``) and
    the concatenation of all conditional-BN scale/offset weights (one matmul per forward).
    On the CPU every sample's pixels are bit-identical whatever batch it is in.
    """

    truncation = "deepmind"
    _CACHE_SIZE = 8

    def __init__(self, config: BigGANDeepConfig):
        super().__init__()
        if not config.layers:
            raise ValueError("BigGANDeepConfig.layers is empty")
        self.config = config
        self.z_dim = config.z_dim
        self.num_classes = config.num_classes
        self.resolution = config.output_dim
        self.embeddings = _Linear(config.num_classes, config.z_dim, bias=False)
        self.generator = _Trunk(config)
        self._cond_bns = [bn for layer in self.generator.layers if isinstance(layer, _GenBlock)
                          for bn in layer.bns()]
        self._stats_cache: OrderedDict = OrderedDict()
        self._fused: tuple | None = None
        self.register_load_state_dict_post_hook(lambda module, _keys: module.clear_cache())

    def batch_norms(self) -> list[_BatchNorm]:
        """Every batch norm in forward order (4 per block, then the final one)."""
        return [*self._cond_bns, self.generator.bn]

    def clear_cache(self) -> None:
        self._stats_cache.clear()
        self._fused = None
        for m in self.modules():
            if isinstance(m, _Conv):
                m._phases = None

    def _apply(self, fn, recurse=True):  # .to(), .half(), .cuda(): derived data goes stale
        self.clear_cache()
        return super()._apply(fn, recurse)

    # -- derived data ------------------------------------------------------------------
    def bn_stats(self, psi: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(mean, rstd)`` of all conditional BNs concatenated (forward order), then of the
        final BN, for truncation ``psi``; ``rstd = 1/sqrt(var + eps)``. Computed in float64
        from the (interpolated) stored rows, cast to the model's dtype, cached per row."""
        row, frac = stat_position(psi, self.config.n_stats)
        bns = self.batch_norms()
        stamp = tuple((b.running_means._version, b.running_vars._version) for b in bns)
        dtype = self.generator.gen_z.weight.dtype
        key = (row, frac, dtype)
        hit = self._stats_cache.get(key)
        if hit is not None and hit[0] == stamp:
            self._stats_cache.move_to_end(key)
            return hit[1]
        eps = self.config.eps
        with torch.inference_mode(False), torch.no_grad():
            means = [interpolate_stats(b.running_means, row, frac) for b in bns]
            rstds = [torch.rsqrt(interpolate_stats(b.running_vars, row, frac) + eps) for b in bns]
            stats = (torch.cat(means[:-1]).to(dtype), torch.cat(rstds[:-1]).to(dtype),
                     means[-1].to(dtype), rstds[-1].to(dtype))
        self._stats_cache[key] = (stamp, stats)
        while len(self._stats_cache) > self._CACHE_SIZE:
            self._stats_cache.popitem(last=False)
        return stats

    def _cond_weight(self) -> torch.Tensor:
        """All cBN scale weights, then all offset weights, stacked: [2 * sum C, cond_dim]."""
        params = [b.scale.weight for b in self._cond_bns] + [b.offset.weight for b in self._cond_bns]
        if torch.compiler.is_compiling() or (torch.is_grad_enabled() and any(p.requires_grad for p in params)):
            return torch.cat(params)                     # part of the graph: not cached
        stamp = tuple((p.data_ptr(), p._version) for p in params)
        if self._fused is None or self._fused[0] != stamp:
            with torch.inference_mode(False), torch.no_grad():
                self._fused = (stamp, torch.cat(params))
        return self._fused[1]

    # -- forward ---------------------------------------------------------------------
    def synthesize(self, z: torch.Tensor, y: torch.Tensor, psi: float) -> torch.Tensor:
        return self.core(z, y, self.bn_stats(psi))

    def prepare(self, psi: float) -> tuple[torch.Tensor, ...]:
        return self.bn_stats(psi)

    def core(self, z: torch.Tensor, y: torch.Tensor, prepared: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """The forward given :meth:`bn_stats` (what torch.compile compiles: psi-free)."""
        g = self.generator
        per_sample = _per_sample(z)                  # batch-size-invariant CPU GEMMs
        mean, rstd, mean_out, rstd_out = prepared
        embed = _rows(lambda t: F.linear(t, self.embeddings.weight), y, per_sample)
        cond = torch.cat((z, embed), dim=1)
        # Every conditional BN at once: a = (1 + scale(c)) * rstd, b = offset(c) - mean * a.
        so = _rows(lambda t: F.linear(t, self._cond_weight()), cond, per_sample)
        n = mean.shape[0]
        a = (so[:, :n] + 1.0).mul_(rstd)
        b = torch.addcmul(so[:, n:], mean, a, value=-1.0)
        sizes = [bn.num_features for bn in self._cond_bns]
        ab = iter(zip(a.split(sizes, dim=1), b.split(sizes, dim=1)))

        ch16 = 16 * self.config.channel_width
        x = _rows(lambda t: F.linear(t, g.gen_z.weight, g.gen_z.bias), cond, per_sample)
        # TF layout: the linear output is [B, 4, 4, C] (NHWC), permuted to NCHW.
        x = x.view(-1, 4, 4, ch16).permute(0, 3, 1, 2).contiguous()
        for layer in g.layers:
            x = layer.run(x, ab) if isinstance(layer, _GenBlock) else layer(x)
        a_out = g.bn.weight * rstd_out
        b_out = torch.addcmul(g.bn.bias, mean_out, a_out, value=-1.0)
        x = _bn_relu(x, a_out[None], b_out[None])
        rgb = g.conv_to_rgb
        x = F.conv2d(x, rgb.weight[:3], rgb.bias[:3], padding=1)   # only the kept channels
        return torch.tanh(x)

    # -- random weights ----------------------------------------------------------------
    def random_init_(self, seed: int = 0) -> BigGANDeep:
        """Deterministic, numerically sane random weights (same on every machine).

        Weights are uniform draws from a seeded CPU generator, divided by the random-matrix
        estimate of their largest singular value (the folded spectral norm); the per-truncation
        BN statistics are the activation statistics those weights produce (propagated
        analytically), so every layer sees roughly unit-variance inputs and the output
        spreads over [-1, 1].
        """
        from .random_init import random_state_dict

        state = random_state_dict(self.config, seed, state_shapes(self.config))
        self.load_state_dict(state, strict=True)   # copies onto our device and dtype
        self.clear_cache()
        return self


_shape_cache: dict[BigGANDeepConfig, BigGANDeep] = {}


def state_shapes(config: BigGANDeepConfig) -> dict[str, tuple[int, ...]]:
    """Internal state-dict names and shapes of a config (a meta-device model: no memory)."""
    m = _shape_cache.get(config)
    if m is None:
        with torch.device("meta"):
            m = BigGANDeep(config)
        _shape_cache[config] = m
    return {k: tuple(v.shape) for k, v in m.state_dict().items()}
