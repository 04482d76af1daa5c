"""The layers of BigGAN-deep (:mod:`bigganctl.models.biggan_deep`): minimal modules that own
the parameters under the Hugging Face names, and the functional pieces the model's forward
is made of (per-sample rows on the CPU, phase convolutions, BN + ReLU as one ``addcmul``).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from .config import BigGANDeepConfig

#: On the CPU, convolutions at or below this spatial size run one sample at a time: oneDNN
#: picks batch-size-dependent algorithms for them, which would make a sample's pixels
#: depend on its batch. (Larger convolutions, measured, do not.) They are cheap.
PER_SAMPLE_MAX_SIZE = 4


def run_per_sample(x: torch.Tensor) -> bool:
    """Run the batch-shape-sensitive kernels one sample at a time? On the CPU in eager
    mode, yes; under torch.compile the graph is batched (one static shape; outputs equal
    eager within the uint8 rule, see docs/performance.md)."""
    return x.device.type == "cpu" and not torch.compiler.is_compiling()


def is_nhwc(x: torch.Tensor) -> bool:
    """Is ``x`` [B, C, H, W] stored NHWC (and not trivially both layouts)?"""
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def rows(fn, per_sample: bool, *xs: torch.Tensor) -> torch.Tensor:
    """``fn(*xs)``, or ``fn`` applied to each sample of ``xs`` separately (batch-size-invariant
    bits: the kernel sees the same shapes whatever the batch)."""
    n = xs[0].shape[0]
    if per_sample and n > 1:
        return torch.cat([fn(*(x[i:i + 1] for x in xs)) for i in range(n)])
    return fn(*xs)


class Linear(nn.Module):
    def __init__(self, in_f: int, out_f: int, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(out_f, in_f))
        self.bias = nn.Parameter(torch.zeros(out_f)) if bias else None


class Conv(nn.Module):
    def __init__(self, in_c: int, out_c: int, k: int, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(out_c, in_c, k, k))
        self.bias = nn.Parameter(torch.zeros(out_c)) if bias else None
        self.padding = k // 2
        self._phases: tuple | None = None     # derived: see up2x_forward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        per_sample = run_per_sample(x) and x.shape[-1] <= PER_SAMPLE_MAX_SIZE
        return rows(lambda t: F.conv2d(t, self.weight, self.bias, padding=self.padding), per_sample, x)

    def up2x_forward(self, x: torch.Tensor) -> torch.Tensor:
        """``conv3x3(nearest_upsample_2x(x))`` without upsampling: each of the four output
        phases (row parity a, column parity b) is a 2x2 conv of ``x`` whose taps are sums of
        the 3x3 taps. All four run as one conv with 4x the output channels on ``x`` padded
        by 1; 16 instead of 36 multiply-adds per output pixel and no upsampled copy."""
        b, _, h, w = x.shape
        weight, bias = self._phase_weights()
        per_sample = run_per_sample(x) and w <= PER_SAMPLE_MAX_SIZE
        y = rows(lambda t: F.conv2d(F.pad(t, (1, 1, 1, 1)), weight, bias), per_sample, x)
        y = y.view(b, 2, 2, -1, h + 1, w + 1)                    # [B, a, b, O, H+1, W+1]
        o, nhwc = y.shape[3], is_nhwc(x)     # NHWC in -> interleave into an NHWC buffer
        buf = x.new_empty(b, h, 2, w, 2, o) if nhwc else x.new_empty(b, o, h, 2, w, 2)
        out = buf.permute(0, 5, 1, 2, 3, 4) if nhwc else buf      # indexed [B, O, H, a, W, b]
        for pa in (0, 1):
            for pb in (0, 1):
                out[:, :, :, pa, :, pb] = y[:, pa, pb, :, pa:pa + h, pb:pb + w]
        if nhwc:
            return buf.view(b, 2 * h, 2 * w, o).permute(0, 3, 1, 2)
        return buf.view(b, o, 2 * h, 2 * w)

    def _phase_weights(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        if torch.compiler.is_compiling() or (torch.is_grad_enabled() and self.weight.requires_grad):
            return phase_kernels(self.weight, self.bias)       # part of the graph
        stamp = (self.weight.data_ptr(), self.weight._version, self.weight.dtype,
                 None if self.bias is None else (self.bias.data_ptr(), self.bias._version))
        if self._phases is None or self._phases[0] != stamp:
            with torch.inference_mode(False), torch.no_grad():
                self._phases = (stamp, *phase_kernels(self.weight, self.bias))
        return self._phases[1], self._phases[2]


def phase_kernels(w: torch.Tensor, bias: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """3x3 kernel [O, I, 3, 3] -> the four 2x2 phase kernels [4O, I, 2, 2] of
    upsample-then-conv, phases (0,0), (0,1), (1,0), (1,1). Along one axis, output parity 0
    reads input rows (i-1, i) with taps (k0, k1 + k2); parity 1 reads (i, i+1) with
    (k0 + k1, k2)."""
    def split(t: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
        k0, k1, k2 = t.unbind(dim)
        return torch.stack([k0, k1 + k2], dim), torch.stack([k0 + k1, k2], dim)

    kernels = [k for half in split(w, 2) for k in split(half, 3)]
    return torch.cat(kernels, 0), (None if bias is None else bias.repeat(4))


class BatchNorm(nn.Module):
    """Batch norm with stored per-truncation statistics; conditional (scale/offset are
    bias-free linears of the condition vector) or plain affine (weight/bias)."""

    def __init__(self, num_features: int, n_stats: int, cond_dim: int | None):
        super().__init__()
        self.num_features = num_features
        self.register_buffer("running_means", torch.zeros(n_stats, num_features))
        self.register_buffer("running_vars", torch.ones(n_stats, num_features))
        self.conditional = cond_dim is not None
        if self.conditional:
            self.scale = Linear(cond_dim, num_features, bias=False)
            self.offset = Linear(cond_dim, num_features, bias=False)
        else:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))


def bn_relu(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``relu(x * a + b)`` with per-sample, per-channel ``a``, ``b`` [B or 1, C]; a batch norm
    ``(x - mean) * rstd * gain + bias`` is ``a = gain * rstd``, ``b = bias - mean * a``."""
    return torch.addcmul(b[:, :, None, None], x, a[:, :, None, None]).relu_()


class GenBlock(nn.Module):
    """Bottleneck residual block (reduction 4): 1x1 / [up] 3x3 / 3x3 / 1x1, each after
    cBN + ReLU. Skip: the first half of the channels when the count drops, then upsample."""

    def __init__(self, in_c: int, out_c: int, cond_dim: int, up: bool, n_stats: int):
        super().__init__()
        mid = in_c // 4
        self.up = up
        self.drop_channels = in_c != out_c
        self.bn_0 = BatchNorm(in_c, n_stats, cond_dim)
        self.conv_0 = Conv(in_c, mid, 1)
        self.bn_1 = BatchNorm(mid, n_stats, cond_dim)
        self.conv_1 = Conv(mid, mid, 3)
        self.bn_2 = BatchNorm(mid, n_stats, cond_dim)
        self.conv_2 = Conv(mid, mid, 3)
        self.bn_3 = BatchNorm(mid, n_stats, cond_dim)
        self.conv_3 = Conv(mid, out_c, 1)

    def bns(self) -> tuple[BatchNorm, ...]:
        return self.bn_0, self.bn_1, self.bn_2, self.bn_3

    def run(self, x: torch.Tensor, ab: Iterator[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        h = self.conv_0(bn_relu(x, *next(ab)))
        h = bn_relu(h, *next(ab))
        h = self.conv_1.up2x_forward(h) if self.up else self.conv_1(h)
        h = self.conv_2(bn_relu(h, *next(ab)))
        h = self.conv_3(bn_relu(h, *next(ab)))
        skip = x[:, : x.shape[1] // 2] if self.drop_channels else x
        if self.up:
            skip = F.interpolate(skip, scale_factor=2, mode="nearest")
        return h.add_(skip)


class SelfAttn(nn.Module):
    """SA-GAN non-local block: theta, phi (C/8), g (C/2) 1x1 convs, phi and g 2x2
    max-pooled, ``x + gamma * o(g softmax(theta^T phi)^T)``."""

    def __init__(self, ch: int):
        super().__init__()
        self.snconv1x1_theta = Conv(ch, ch // 8, 1, bias=False)
        self.snconv1x1_phi = Conv(ch, ch // 8, 1, bias=False)
        self.snconv1x1_g = Conv(ch, ch // 2, 1, bias=False)
        self.snconv1x1_o_conv = Conv(ch // 2, ch, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        theta = self.snconv1x1_theta(x).flatten(2)                          # [B, C/8, HW]
        phi = F.max_pool2d(self.snconv1x1_phi(x), 2).flatten(2)             # [B, C/8, HW/4]
        g = F.max_pool2d(self.snconv1x1_g(x), 2).flatten(2)                 # [B, C/2, HW/4]
        # MKL's batched GEMM splits a batch between threads by its size: one sample at a time
        # on the CPU, like every other batch-shape-sensitive kernel here.
        o = rows(attend, run_per_sample(x), theta, phi, g).view(b, -1, h, w)  # [B, C/2, H, W]
        return torch.addcmul(x, self.gamma, self.snconv1x1_o_conv(o))


def attend(theta: torch.Tensor, phi: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``g softmax(theta^T phi)^T``: [B, C/8, HW], [B, C/8, HW/4], [B, C/2, HW/4] -> [B, C/2, HW]."""
    attn = torch.softmax(torch.bmm(theta.transpose(1, 2), phi), dim=-1)      # [B, HW, HW/4]
    return torch.bmm(g, attn.transpose(1, 2))


class Trunk(nn.Module):
    """``generator.*`` of the HF layout."""

    def __init__(self, cfg: BigGANDeepConfig):
        super().__init__()
        ch = cfg.channel_width
        cond_dim = 2 * cfg.z_dim
        self.gen_z = Linear(cond_dim, 4 * 4 * 16 * ch)
        layers: list[nn.Module] = []
        for i, (up, in_m, out_m) in enumerate(cfg.layers):
            if i == cfg.attention_layer_position:
                layers.append(SelfAttn(ch * in_m))
            layers.append(GenBlock(ch * in_m, ch * out_m, cond_dim, up, cfg.n_stats))
        self.layers = nn.ModuleList(layers)
        self.bn = BatchNorm(ch, cfg.n_stats, None)
        self.conv_to_rgb = Conv(ch, ch, 3)
