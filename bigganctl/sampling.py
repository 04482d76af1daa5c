"""Truncated noise, seeded per sample (pure; no models, no files).

The same (seed, z_dim, psi, convention) gives bit-identical noise on every machine and
whatever the batch it belongs to: each sample draws from its own CPU generator.
Noise is drawn by the inverse CDF of the truncated normal from ``z_dim`` uniforms, so a
sample's noise for different psi comes from the same uniforms (common random numbers).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .errors import UsageError

#: DeepMind models (BigGAN-deep, TF-Hub BigGAN) sample psi * TruncNorm(-2, 2).
DEEPMIND_BOUND = 2.0
CONVENTIONS = {
    "deepmind": "z = psi * TruncNorm(-2, 2); psi also selects the batch-norm statistics",
    "paper": "z ~ N(0, 1) with values beyond +-psi re-drawn (TruncNorm(-psi, psi))",
}


def check_psi(psi: float, convention: str, *, option: str = "--trunc") -> float:
    """Validate psi for a convention; DeepMind models take psi in (0, 1]."""
    psi = float(psi)
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown truncation convention {convention!r}")
    if not math.isfinite(psi):
        raise UsageError(f"{psi} is not a finite number", option=option)
    if psi <= 0:
        raise UsageError(f"psi must be > 0, got {psi:g}", option=option)
    if convention == "deepmind" and 1.0 < psi <= 1.0 + 1e-9:
        psi = 1.0  # float noise from grids such as np.arange(0.2, 1.1, 0.1)
    if convention == "deepmind" and psi > 1.0:
        raise UsageError(
            f"psi must be in (0, 1] for this model (DeepMind convention), got {psi:g}", option=option)
    return psi


def _truncnorm_icdf(u: torch.Tensor, bound: float) -> torch.Tensor:
    """Map uniforms in [0, 1) to TruncNorm(-bound, bound) by the inverse CDF (float64)."""
    if math.isinf(bound):
        lo, hi = 0.0, 1.0
    else:
        lo = float(torch.special.ndtr(torch.tensor(-bound, dtype=torch.float64)))
        hi = 1.0 - lo
    p = lo + u * (hi - lo)
    p = p.clamp(min=torch.finfo(torch.float64).tiny, max=1.0 - torch.finfo(torch.float64).eps)
    x = torch.special.ndtri(p)
    return x.clamp(-bound, bound) if not math.isinf(bound) else x


def seed_uniforms(seed: int, n: int) -> torch.Tensor:
    """``n`` float64 uniforms from a CPU generator seeded with ``seed`` alone."""
    g = torch.Generator(device="cpu")
    g.manual_seed(int(seed))
    return torch.rand(n, generator=g, dtype=torch.float64)


def truncated_noise(seeds: Sequence[int], z_dim: int, psi: float = 1.0,
                    convention: str = "deepmind") -> torch.Tensor:
    """Per-sample truncated noise, float32 [len(seeds), z_dim] on the CPU.

    - ``"deepmind"``: ``psi * TruncNorm(-2, 2)`` (BigGAN-deep, TF-Hub BigGAN).
    - ``"paper"``: ``TruncNorm(-psi, psi)``, the paper's re-draw beyond the threshold.

    >>> truncated_noise([0, 1], z_dim=4, psi=0.5).shape
    torch.Size([2, 4])
    """
    psi = float(psi)
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown truncation convention {convention!r}")
    if not psi > 0:
        raise ValueError(f"psi must be > 0, got {psi}")
    if len(seeds) == 0:
        return torch.empty(0, z_dim)
    u = torch.stack([seed_uniforms(s, z_dim) for s in seeds])
    if convention == "deepmind":
        z = psi * _truncnorm_icdf(u, DEEPMIND_BOUND)
    else:
        z = _truncnorm_icdf(u, psi)
    return z.to(torch.float32)
