"""Shared helpers for the metrics tests: a random Inception file and small image sets."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

_TMP: Path | None = None


def _tmp() -> Path:
    global _TMP
    if _TMP is None:
        _TMP = Path(tempfile.mkdtemp(prefix="bigganctl-metrics-tests-"))
        atexit.register(shutil.rmtree, _TMP, ignore_errors=True)
    return _TMP


def inception_file(seed: int = 0) -> Path:
    """A random-weight inception-v3-compat file, written once per test process."""
    from bigganctl.testing.inception import write_random_inception

    p = _tmp() / f"inception-random-{seed}.pth"
    if not p.exists():
        write_random_inception(p, seed=seed)
    return p


def smooth_images(n: int, seed: int, size: int = 32, grid: int = 4) -> np.ndarray:
    """``n`` smooth random RGB images, uint8 NHWC (upsampled from a ``grid`` x ``grid`` noise)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, grid, grid, generator=g) * 255
    x = nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def write_folder(folder: Path, images: np.ndarray, ext: str = "png") -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i, im in enumerate(images):
        Image.fromarray(im).save(folder / f"{i:04d}.{ext}")
    return folder
