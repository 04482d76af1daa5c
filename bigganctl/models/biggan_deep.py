"""BigGAN-deep (DeepMind TF-Hub models in the Hugging Face port's layout), spectral norm folded.

Parameter and buffer names are the Hugging Face state-dict keys with spectral norm folded
(``generator.gen_z.weight`` instead of ``weight_orig``/``weight_u``/``weight_v``), so
:mod:`bigganctl.weights.formats.hf` converts with a one-line key map.

Forward (as the HF port): ``cond = cat(z, embed(y))`` -> linear to 4x4x16ch viewed NHWC ->
bottleneck blocks (self-attention before block ``attention_layer_position``) -> BN, ReLU,
3x3 conv -> channels [:3] -> tanh. Every batch norm uses *stored* per-truncation
statistics: row i of ``running_means``/``running_vars`` holds psi = i / (n_stats - 1).
Unlike the HF port, the row is chosen correctly (:func:`stat_position`).

Speed: no spectral norm at run time (folded at load); the per-psi BN statistics are
reduced once to ``(mean, 1/sqrt(var + eps))`` and cached; all conditional-BN scale/offset
linears run as one matmul; a BN + ReLU is one ``addcmul`` and an in-place ReLU;
upsample-then-3x3-conv runs as four 2x2 phase convs on the small input (no upsampled copy,
16 instead of 36 multiply-adds per pixel); the RGB conv computes only the 3 kept channels;
on the CPU the loader stores the convolution weights NHWC (``cpu_memory_format``), which
keeps the activations NHWC too (about 1.4x faster than NCHW there). Layers:
:mod:`bigganctl.models.deep_layers`.

Batch-size independence: on the CPU, the matmuls (self-attention's included) and the 4x4
convs (where oneDNN/MKL pick batch-size-dependent kernels or split a batch between threads)
run one sample at a time, so at a given thread count a sample's pixels are bit-identical in
any batch. On accelerators and under torch.compile (:meth:`BigGANDeep.core`,
psi-free) everything is batched (equal to float rounding; docs/performance.md).
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F

from .base import Generator
from .config import BigGANDeepConfig
from .deep_layers import BatchNorm, Conv, GenBlock, Linear, Trunk, bn_relu, is_nhwc, rows, run_per_sample

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


# ----------------------------------------------------------------------------- model

class BigGANDeep(Generator):
    """BigGAN-deep generator; ``G(z, y, psi)`` with z [B, z_dim], y classes, psi in (0, 1].

    Derived data, rebuilt when what it derives from changes (parameter/buffer versions,
    ``.to()``, ``load_state_dict``): the per-psi BN statistics (LRU of ``_CACHE_SIZE``) and
    the concatenation of all conditional-BN scale/offset weights (one matmul per forward).
    On the CPU every sample's pixels are bit-identical whatever batch it is in.
    """

    truncation = "deepmind"
    #: NHWC on the CPU: oneDNN's convolutions (and the max-pool) run about 1.4x faster
    #: than NCHW here, and pixels stay batch-independent (docs/performance.md, "Layout").
    cpu_memory_format = torch.channels_last
    stat_buffers = ("running_means", "running_vars")
    _CACHE_SIZE = 8

    def __init__(self, config: BigGANDeepConfig):
        super().__init__()
        if not config.layers:
            raise ValueError("BigGANDeepConfig.layers is empty")
        self.config = config
        self.z_dim = config.z_dim
        self.num_classes = config.num_classes
        self.resolution = config.output_dim
        self.embeddings = Linear(config.num_classes, config.z_dim, bias=False)
        self.generator = Trunk(config)
        self._cond_bns = [bn for layer in self.generator.layers if isinstance(layer, GenBlock)
                          for bn in layer.bns()]
        self._stats_cache: OrderedDict = OrderedDict()
        self._fused: tuple | None = None
        self.register_load_state_dict_post_hook(lambda module, _keys: module.clear_cache())

    def batch_norms(self) -> list[BatchNorm]:
        """Every batch norm in forward order (4 per block, then the final one)."""
        return [*self._cond_bns, self.generator.bn]

    def clear_cache(self) -> None:
        self._stats_cache.clear()
        self._fused = None
        for m in self.modules():
            if isinstance(m, Conv):
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
        per_sample = run_per_sample(z)                  # batch-size-invariant CPU GEMMs
        mean, rstd, mean_out, rstd_out = prepared
        embed = rows(lambda t: F.linear(t, self.embeddings.weight), per_sample, y)
        cond = torch.cat((z, embed), dim=1)
        # Every conditional BN at once: a = (1 + scale(c)) * rstd, b = offset(c) - mean * a.
        so = rows(lambda t: F.linear(t, self._cond_weight()), per_sample, cond)
        n = mean.shape[0]
        a = (so[:, :n] + 1.0).mul_(rstd)
        b = torch.addcmul(so[:, n:], mean, a, value=-1.0)
        sizes = [bn.num_features for bn in self._cond_bns]
        ab = iter(zip(a.split(sizes, dim=1), b.split(sizes, dim=1)))

        ch16 = 16 * self.config.channel_width
        x = rows(lambda t: F.linear(t, g.gen_z.weight, g.gen_z.bias), per_sample, cond)
        # TF layout: the linear output is [B, 4, 4, C] (NHWC), permuted to NCHW.
        # Kept NHWC when the model's convolutions are (the CPU layout: see cpu_memory_format).
        fmt = torch.channels_last if is_nhwc(g.conv_to_rgb.weight) else torch.contiguous_format
        x = x.view(-1, 4, 4, ch16).permute(0, 3, 1, 2).contiguous(memory_format=fmt)
        for layer in g.layers:
            x = layer.run(x, ab) if isinstance(layer, GenBlock) else layer(x)
        a_out = g.bn.weight * rstd_out
        b_out = torch.addcmul(g.bn.bias, mean_out, a_out, value=-1.0)
        x = bn_relu(x, a_out[None], b_out[None])
        rgb = g.conv_to_rgb
        x = F.conv2d(x, rgb.weight[:3], rgb.bias[:3], padding=1)   # only the kept channels
        return torch.tanh(x).contiguous()       # NCHW out, whatever the layout inside

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
