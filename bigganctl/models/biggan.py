"""BigGAN (not deep): one parameterised generator for three published layouts.

The author's release (ajbrock/BigGAN-PyTorch ``G_ema.pth``), the DeepMind TF-Hub models
as ported by ivclab, and the tutorial layout of the seed document differ only in knobs of
:class:`~bigganctl.models.config.BigGANConfig`. The format adapters in
``bigganctl/weights/formats/`` convert each file into the internal layout below, folding spectral
norm into plain weights exactly as the reference computes sigma in eval mode; the model
runs no power iterations.

Internal layout (``S = max(1, n_stats)`` rows of statistics; ``c`` = cond_dim)::

    shared.weight                  (n_classes, shared_dim)   class embedding = y_vec @ W
    linear.weight / .bias          (ch*in_mult[0]*bw*bw, z_chunk) rows in (C, H, W) order
    blocks.i.bn1.scale / .shift    (C_in, c)     cBN: (1 + scale c) * x_hat + shift c
    blocks.i.bn1.weight / .bias    (C_in,)       only with cbn_affine_bn (tutorial)
    blocks.i.bn1.mean / .var       (S, C_in)
    blocks.i.conv1.weight / .bias  (C_out, C_in, 3, 3)
    blocks.i.bn2.*                 as bn1 with C_out
    blocks.i.conv2.weight / .bias  (C_out, C_out, 3, 3)
    blocks.i.conv_sc.weight / .bias (C_out, C_in, 1, 1)  when config.has_shortcut_conv(i)
    blocks.i.attn.theta/phi.weight (C/8, C, 1, 1);  g.weight (C/2, C, 1, 1)
    blocks.i.attn.o.weight         (C, C/2, 1, 1);  attn.gamma ()   when i in attn_blocks
    out_bn.weight / .bias / .mean / .var
    out_conv.weight / .bias        (3, ch*out_mult[-1], k, k)
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from .base import Generator
from .config import BigGANConfig
from .random_init import spectrally_normalised

#: psi values closer than this (in units of the statistics grid) to a grid row use that row.
SNAP_TOL = 1e-6


def stat_weights(psi: float, n_stats: int) -> tuple[int, int, float]:
    """Which standing-statistics rows a psi selects: ``(i0, i1, frac)``, stats =
    ``(1 - frac) * row[i0] + frac * row[i1]``.

    Row ``i`` holds the statistics for ``psi = (i + 1) / n_stats``. ``pos = psi * n_stats - 1``
    within ``SNAP_TOL`` of an integer snaps to that row (so 0.05 * 6 selects the 0.30 row);
    otherwise the two neighbouring rows are interpolated linearly. Outside the grid the
    nearest end row is used: every psi <= 1 / n_stats (0.02 for the TF-Hub models) gets the
    statistics measured at 0.02, every psi >= 1 those of 1.0 - no extrapolation.

    >>> stat_weights(0.3, 50)
    (14, 14, 0.0)
    >>> stat_weights(0.01, 50)
    (0, 0, 0.0)
    """
    if n_stats <= 1:
        return 0, 0, 0.0
    pos = float(psi) * n_stats - 1.0
    if pos <= 0.0:
        return 0, 0, 0.0
    if pos >= n_stats - 1:
        return n_stats - 1, n_stats - 1, 0.0
    near = round(pos)
    if abs(pos - near) <= SNAP_TOL:
        return near, near, 0.0
    i0 = math.floor(pos)
    return i0, i0 + 1, pos - i0


class _CBN(nn.Module):
    """Conditional batch norm (+ ReLU) with stored statistics."""

    def __init__(self, channels: int, cond_dim: int, n_rows: int, affine: bool):
        super().__init__()
        self.scale = nn.Parameter(torch.zeros(channels, cond_dim))
        self.shift = nn.Parameter(torch.zeros(channels, cond_dim))
        if affine:
            self.weight = nn.Parameter(torch.ones(channels))
            self.bias = nn.Parameter(torch.zeros(channels))
        else:
            self.weight = self.bias = None
        self.register_buffer("mean", torch.zeros(n_rows, channels))
        self.register_buffer("var", torch.ones(n_rows, channels))

    def forward(self, x: torch.Tensor, c: torch.Tensor, mean: torch.Tensor,
                inv_std: torch.Tensor) -> torch.Tensor:
        gain = F.linear(c, self.scale).add_(1.0)           # 1 + scale(c)   [B, C]
        shift = F.linear(c, self.shift)                     # shift(c)       [B, C]
        if self.weight is not None:                         # (1+g)(w x_hat + b) + s
            shift = shift.addcmul_(gain, self.bias)
            gain = gain * self.weight
        a = gain * inv_std                                  # x * a + (shift - mean * a)
        b = shift.sub_(a * mean)
        out = torch.addcmul(b[:, :, None, None], x, a[:, :, None, None])
        return out.relu_()


class _Conv(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(cout, cin, k, k))
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, self.bias, padding=self.weight.shape[-1] // 2)


class _Attention(nn.Module):
    """SA-GAN non-local block: softmax(theta^T phi) without scaling; phi, g 2x2 max-pooled."""

    def __init__(self, ch: int):
        super().__init__()
        self.theta = _Conv(ch, ch // 8, 1, bias=False)
        self.phi = _Conv(ch, ch // 8, 1, bias=False)
        self.g = _Conv(ch, ch // 2, 1, bias=False)
        self.o = _Conv(ch // 2, ch, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        c8 = c // 8
        w_all = torch.cat([self.theta.weight, self.phi.weight, self.g.weight])
        t = F.conv2d(x, w_all)                                     # one 1x1 conv for all three
        theta = t[:, :c8].flatten(2).transpose(1, 2)               # [n, hw, c/8]
        pooled = F.max_pool2d(t[:, c8:], 2).flatten(2).transpose(1, 2)
        phi, g = pooled[..., :c8], pooled[..., c8:]                # [n, hw/4, c/8], [.., c/2]
        # softmax(theta phi^T) g, unscaled (scale=1), as SA-GAN / BigGAN compute it
        y = F.scaled_dot_product_attention(theta, phi, g, scale=1.0)   # [n, hw, c/2]
        y = y.transpose(1, 2).reshape(n, c // 2, h, w)
        return torch.addcmul(x, F.conv2d(y, self.o.weight), self.gamma)


class _Block(nn.Module):
    def __init__(self, cfg: BigGANConfig, i: int, n_rows: int):
        super().__init__()
        cin, cout = cfg.block_channels(i)
        self.bn1 = _CBN(cin, cfg.cond_dim, n_rows, cfg.cbn_affine_bn)
        self.conv1 = _Conv(cin, cout, 3)
        self.bn2 = _CBN(cout, cfg.cond_dim, n_rows, cfg.cbn_affine_bn)
        self.conv2 = _Conv(cout, cout, 3)
        self.conv_sc = _Conv(cin, cout, 1) if cfg.has_shortcut_conv(i) else None
        self.attn = _Attention(cout) if i in cfg.attn_blocks else None


class _OutBN(nn.Module):
    def __init__(self, channels: int, n_rows: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("mean", torch.zeros(n_rows, channels))
        self.register_buffer("var", torch.ones(n_rows, channels))


class BigGAN(Generator):
    """BigGAN generator with folded (plain) weights; see the module docstring for the layout."""

    stat_buffers = ("mean", "var")

    def __init__(self, config: BigGANConfig):
        super().__init__()
        cfg = self.config = config
        self.z_dim = cfg.dim_z
        self.num_classes = cfg.n_classes
        self.resolution = cfg.resolution
        self.truncation = cfg.truncation
        rows = max(1, cfg.n_stats)
        c0 = cfg.ch * cfg.in_mult[0]
        self.shared = nn.Module()
        self.shared.weight = nn.Parameter(torch.zeros(cfg.n_classes, cfg.shared_dim))
        self.linear = nn.Module()
        self.linear.weight = nn.Parameter(torch.zeros(c0 * cfg.bottom_width ** 2, cfg.z_chunk_size))
        self.linear.bias = nn.Parameter(torch.zeros(c0 * cfg.bottom_width ** 2))
        self.blocks = nn.ModuleList(_Block(cfg, i, rows) for i in range(cfg.num_blocks))
        cl = cfg.ch * cfg.out_mult[-1]
        self.out_bn = _OutBN(cl, rows)
        self.out_conv = _Conv(cl, 3, cfg.out_kernel)
        self._stat_cache: OrderedDict = OrderedDict()

    # -- statistics selection, cached per (psi, device, dtype) ---------------------------
    def _bns(self):
        for blk in self.blocks:
            yield blk.bn1
            yield blk.bn2
        yield self.out_bn

    def _stats(self, psi: float) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``(mean, 1/sqrt(var + eps))`` per BN, in forward order, for this psi."""
        i0, i1, frac = stat_weights(psi, self.config.n_stats)
        ref = self.linear.weight           # the model's device and dtype (stats stay float32)
        key = (i0, i1, frac, ref.device, ref.dtype)
        hit = self._stat_cache.get(key)
        if hit is not None:
            self._stat_cache.move_to_end(key)
            return hit
        n_bn = 2 * self.config.num_blocks
        out = []
        # normal tensors even when called under inference_mode: the cache outlives the call
        with torch.inference_mode(False), torch.no_grad():
            for k, bn in enumerate(self._bns()):
                eps = self.config.bn_eps if k < n_bn else self.config.output_bn_eps
                m, v = bn.mean.float(), bn.var.float()      # float32 even for bf16 models
                mean, var = m[i0], v[i0]
                if i1 != i0:
                    mean = torch.lerp(mean, m[i1], frac)
                    var = torch.lerp(var, v[i1], frac)
                out.append((mean.to(ref.dtype), torch.rsqrt(var + eps).to(ref.dtype)))
        self._stat_cache[key] = out
        while len(self._stat_cache) > 8:
            self._stat_cache.popitem(last=False)
        return out

    def _apply(self, fn, *args, **kwargs):
        self._stat_cache = OrderedDict()
        return super()._apply(fn, *args, **kwargs)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        self._stat_cache = OrderedDict()
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    # -- forward --------------------------------------------------------------------------
    def synthesize(self, z: torch.Tensor, y: torch.Tensor, psi: float) -> torch.Tensor:
        return self._forward(z, y, self._stats(psi))

    def prepare(self, psi: float):
        return self._stats(psi)

    def core(self, z: torch.Tensor, y: torch.Tensor, prepared) -> torch.Tensor:
        return self._forward(z, y, prepared)

    def _forward(self, z: torch.Tensor, y: torch.Tensor, stats) -> torch.Tensor:
        """``stats``: a list of (mean, inv_std) per BN in forward order, or a callable
        ``(bn, x) -> (mean, inv_std)`` (used to calibrate statistics)."""
        cfg = self.config
        pick = stats if callable(stats) else (lambda bn, x, it=iter(stats): next(it))
        emb = y @ self.shared.weight                         # soft class vectors work
        zs = torch.split(z, cfg.z_chunk_size, dim=1)
        h = F.linear(zs[0], self.linear.weight, self.linear.bias)
        h = h.view(z.shape[0], -1, cfg.bottom_width, cfg.bottom_width)
        for i, blk in enumerate(self.blocks):
            c = torch.cat([emb, zs[i + 1]], dim=1)          # class first
            st1 = pick(blk.bn1, h)
            h1 = blk.bn1(h, c, *st1)
            h1 = blk.conv1(F.interpolate(h1, scale_factor=2, mode="nearest"))
            st2 = pick(blk.bn2, h1)
            h1 = blk.conv2(blk.bn2(h1, c, *st2))
            sc = blk.conv_sc(h) if blk.conv_sc is not None else h
            h = h1.add_(F.interpolate(sc, scale_factor=2, mode="nearest"))
            if blk.attn is not None:
                h = blk.attn(h)
        mean, inv_std = pick(self.out_bn, h)
        a = inv_std * self.out_bn.weight
        b = self.out_bn.bias - mean * a
        h = torch.addcmul(b[:, None, None], h, a[:, None, None]).relu_()
        return torch.tanh(self.out_conv(h))

    # -- deterministic random weights -----------------------------------------------------
    @torch.no_grad()
    def random_init_(self, seed: int = 0, *, calib_batch: int = 4) -> BigGAN:
        """Fill with deterministic, sane random weights; returns ``self``.

        Weights are drawn on the CPU from a ``torch.Generator`` seeded with ``seed`` alone.
        Every layer that a checkpoint format spectrally normalises gets a Gaussian weight
        divided by its spectral norm, as a real model's folded weights are (sigma from
        :func:`~bigganctl.models.random_init.sn_estimate`, the estimate the format writers store, so a written file folds
        back to these weights in every format); the
        batch-norm statistics are then calibrated on a seeded batch (float32, CPU), so
        activations stay normalised and the output spreads over [-1, 1]. Per-truncation
        rows (n_stats > 0) drift smoothly by a few percent around the calibrated values.
        """
        cfg = self.config
        g = torch.Generator(device="cpu").manual_seed(int(seed))
        work = BigGAN(cfg)                      # float32, CPU, whatever self is now

        def randn(*shape):
            return torch.randn(*shape, generator=g)

        def sn_unit(*shape):
            return spectrally_normalised(randn(*shape))

        work.shared.weight.copy_(randn(*work.shared.weight.shape) * 0.5)
        lw = work.linear.weight
        lw.copy_(sn_unit(*lw.shape) if cfg.sn_linear else randn(*lw.shape) / math.sqrt(lw.shape[1]))
        work.linear.bias.copy_(randn(*work.linear.bias.shape) * 0.05)
        for blk in work.blocks:
            for bn in (blk.bn1, blk.bn2):
                bn.scale.copy_(sn_unit(*bn.scale.shape))
                bn.shift.copy_(sn_unit(*bn.shift.shape))
                if bn.weight is not None:
                    bn.weight.copy_(1.0 + 0.1 * randn(*bn.weight.shape))
                    bn.bias.copy_(0.1 * randn(*bn.bias.shape))
            for conv in (blk.conv1, blk.conv2, blk.conv_sc):
                if conv is not None:
                    conv.weight.copy_(sn_unit(*conv.weight.shape))
                    conv.bias.copy_(0.05 * randn(*conv.bias.shape))
            if blk.attn is not None:
                for conv in (blk.attn.theta, blk.attn.phi, blk.attn.g, blk.attn.o):
                    conv.weight.copy_(sn_unit(*conv.weight.shape))
                blk.attn.gamma.fill_(0.5)
        work.out_bn.weight.copy_(1.0 + 0.1 * randn(*work.out_bn.weight.shape))
        work.out_bn.bias.copy_(0.1 * randn(*work.out_bn.bias.shape))
        work.out_conv.weight.copy_(sn_unit(*work.out_conv.weight.shape))
        work.out_conv.bias.copy_(0.05 * randn(3))

        # Calibrate: one pass in which each BN stores the batch statistics of its input.
        z = randn(calib_batch, cfg.dim_z)
        if cfg.truncation == "deepmind":
            z = z.clamp(-2.0, 2.0)
        labels = torch.randint(cfg.n_classes, (calib_batch,), generator=g)
        y = F.one_hot(labels, cfg.n_classes).float()

        def calibrate(bn, x):
            var, mean = torch.var_mean(x, dim=(0, 2, 3), unbiased=False)
            bn.mean.copy_(mean.expand_as(bn.mean))
            bn.var.copy_(var.expand_as(bn.var))
            eps = cfg.output_bn_eps if bn is work.out_bn else cfg.bn_eps
            return mean, torch.rsqrt(var + eps)

        work._forward(z, y, calibrate)
        if cfg.n_stats > 1:
            # distinct, smooth rows: a psi-dependent drift of a few percent
            t = torch.linspace(-0.5, 0.5, cfg.n_stats)[:, None]
            for bn in work._bns():
                m, v = bn.mean[0].clone(), bn.var[0].clone()
                dm, dv = randn(m.shape[0]), randn(v.shape[0])
                bn.mean.copy_(m + 0.2 * t * dm * v.sqrt())
                bn.var.copy_(v * torch.exp(0.2 * t * dv))
        self.load_state_dict(work.state_dict())
        return self
