"""Shared pieces of the BigGAN checkpoint writers: random raw-weight scales, a random
internal state dict, an atomic ``torch.save``."""

from __future__ import annotations

from pathlib import Path

import torch

from .._io import atomic_path
from ..weights.formats._biggan import StateDict
from ..models.config import BigGANConfig


def random_scale(g: torch.Generator) -> float:
    """A raw weight's scale before spectral norm (what a trained file stores)."""
    return float(0.5 + 3.5 * torch.rand((), generator=g, dtype=torch.float64))


def random_internal_state(cfg: BigGANConfig, seed: int) -> StateDict:
    from ..models.biggan import BigGAN

    return BigGAN(cfg).random_init_(seed).state_dict()


def save(path: str | Path, state: StateDict) -> Path:
    """``torch.save`` a plain state dict atomically (temp file + rename)."""
    target = Path(path)
    with atomic_path(target) as tmp:
        torch.save(state, tmp)
    return target
