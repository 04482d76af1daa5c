"""Grids, image files, ADM-style ``.npz`` batches, their names, and the output plan.

All writers take uint8 images (the output of :func:`bigganctl.generate.to_uint8`) and
write atomically (:mod:`bigganctl._io`). Video writers: :mod:`.video`; manifests:
:mod:`.manifest`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Iterable, Sequence

import numpy as np
import torch

from .._io import atomic_path, check_writable_target
from ..classes import ClassInfo
from ..errors import RuntimeFailure, UsageError
from ..parsing import range_text
from ..types import Model

#: Image formats by extension (Pillow format names). WebP is written lossless so files
#: hold exactly the generated pixels; JPEG is lossy (quality 95).
IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
_SAVE_ARGS: dict[str, dict[str, Any]] = {
    "PNG": {"compress_level": 6},
    "JPEG": {"quality": 95, "subsampling": 0},
    "WEBP": {"lossless": True, "quality": 100, "method": 4},
}
GRID_PADDING = 2
GRID_PAD_VALUE = 0


def image_format(path: str | os.PathLike, *, option: str = "out") -> str:
    """Pillow format for ``path`` by extension, or UsageError naming ``option``."""
    ext = Path(path).suffix.lower()
    if ext not in IMAGE_FORMATS:
        raise UsageError(
            f"cannot write {Path(path).name!r}: unknown image extension "
            f"{ext or '(none)'!r} (use {', '.join(IMAGE_FORMATS)})", param=option)
    return IMAGE_FORMATS[ext]


def check_npz_path(path: str | os.PathLike, *, option: str = "npz") -> Path:
    p = Path(path)
    if p.suffix.lower() != ".npz":
        raise UsageError(f"{p.name!r} must end in .npz", param=option)
    return p


def manifest_path(path: str | os.PathLike) -> Path:
    """The manifest beside an output file: ``g.png`` -> ``g.png.json`` (so ``g.png`` and
    ``g.npz`` never share one). A folder of images gets ``DIR/manifest.json`` instead."""
    p = Path(path)
    return p.with_name(p.name + ".json")


def make_grid(images: torch.Tensor, nrow: int, *, padding: int = GRID_PADDING,
              pad_value: int = GRID_PAD_VALUE) -> torch.Tensor:
    """Tile uint8 images [B, C, H, W] into one uint8 image [C, H', W'], ``nrow`` per row.

    ``H' = rows * (H + padding) + padding`` and likewise for W, with ``rows = ceil(B / nrow)``;
    empty trailing cells are ``pad_value``.
    """
    if images.dim() != 4 or images.dtype != torch.uint8:
        raise ValueError(f"expected uint8 [B, C, H, W], got {images.dtype} {tuple(images.shape)}")
    b, c, h, w = images.shape
    if b == 0 or nrow < 1:
        raise ValueError("make_grid needs at least one image and nrow >= 1")
    ncol = min(nrow, b)
    nrows = -(-b // ncol)
    grid = torch.full((c, nrows * (h + padding) + padding, ncol * (w + padding) + padding),
                      pad_value, dtype=torch.uint8)
    for i in range(b):
        r, k = divmod(i, ncol)
        y, x = padding + r * (h + padding), padding + k * (w + padding)
        grid[:, y:y + h, x:x + w] = images[i]
    return grid


def write_image(path: str | os.PathLike, image: torch.Tensor) -> Path:
    """Write one uint8 image [C, H, W] (C = 1 or 3) atomically; format by extension."""
    from PIL import Image

    fmt = image_format(path)
    arr = image.detach().cpu().permute(1, 2, 0).numpy()
    if arr.shape[2] == 1:
        arr = arr[:, :, 0]
    with atomic_path(path) as tmp:
        try:
            Image.fromarray(np.ascontiguousarray(arr)).save(tmp, format=fmt, **_SAVE_ARGS[fmt])
        except OSError as e:
            raise RuntimeFailure(f"cannot write {path}: {e}") from e
    return Path(path)


def write_npz(path: str | os.PathLike, images: torch.Tensor, labels: Sequence[int] | torch.Tensor) -> Path:
    """ADM-style batch: ``arr_0`` uint8 NHWC images, ``arr_1`` int64 labels."""
    arr = images.detach().cpu().permute(0, 2, 3, 1).contiguous().numpy()
    lab = np.asarray(torch.as_tensor(labels).cpu(), dtype=np.int64)
    if arr.dtype != np.uint8 or lab.shape != (arr.shape[0],):
        raise ValueError("write_npz needs uint8 images and one label per image")
    try:
        with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as fh:
            np.savez(fh, arr_0=arr, arr_1=lab)
    except OSError as e:                      # a full disk: name the file, not just ENOSPC
        raise RuntimeFailure(f"cannot write {path}: {e.strerror or e}") from None
    return Path(path)


def sample_filename(class_index: int, class_slug: str, seed: int, ext: str = ".png") -> str:
    """``207_golden_retriever_seed0003.png``: class index, name and seed."""
    return f"{class_index:03d}_{class_slug}_seed{seed:04d}{ext}"


def default_sample_path(model: Model, classes: Sequence[ClassInfo], seeds: Sequence[int], psi: float) -> Path:
    """``samples/<model>_<class indices>_psi<psi>_seeds<range>.png``."""
    name = (Path(model).name if isinstance(model, (str, os.PathLike))
            else getattr(model, "name", None) or getattr(getattr(model, "spec", None), "name", None)
            or type(model).__name__)
    idx = [str(c.index) for c in classes]
    cls = "-".join(idx) if len(idx) <= 6 else f"{len(idx)}classes"
    rng = range_text(list(seeds))
    seeds_part = rng if len(rng) <= 24 else f"{len(seeds)}seeds"
    return Path("samples") / f"{name}_{cls}_psi{psi:g}_seeds{seeds_part}.png"


@dataclass
class OutputPlan:
    """Every file a command will write, checked before any work is done."""

    files: list[tuple[Path, str]]  # (path, option that asked for it)

    @classmethod
    def check(cls, targets: Iterable[tuple[str | os.PathLike, str]], *, overwrite: bool) -> OutputPlan:
        """Refuse existing files (UsageError, exit 2) unless ``overwrite``, duplicate targets
        (exit 2), and folders that cannot be created (RuntimeFailure, exit 1)."""
        files: list[tuple[Path, str]] = []
        seen: dict[Path, str] = {}
        for path, option in targets:
            p = Path(path)
            key = p.resolve()
            if key in seen:
                raise UsageError(f"{p} is also written by {seen[key]}", param=option)
            seen[key] = option
            check_writable_target(p, overwrite=overwrite, option=option)
            _check_parent(p)
            files.append((p, option))
        return cls(files)


def _check_parent(p: Path) -> None:
    """Fail early (exit 1) when ``p``'s folder cannot exist or is not writable."""
    parent = p.parent
    while not parent.exists():
        if parent == parent.parent:
            break
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise RuntimeFailure(f"cannot write {p}: {parent} is not a folder")
    if parent.exists() and not os.access(parent, os.W_OK | os.X_OK):
        raise RuntimeFailure(f"cannot write {p}: {parent} is not writable")
