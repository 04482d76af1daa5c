"""Frames: tiles side by side with an optional caption, and the streaming sink that feeds
a video writer (:mod:`.video`) and, optionally, a folder of PNG frames.

Every output is atomic: written under a temporary name, renamed when complete; a failure
or Ctrl-C removes it (and a ``--frames`` folder in progress).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from .._io import atomic_path
from ..errors import RuntimeFailure, UsageError
from .video import FrameWriter, video_format


# --------------------------------------------------------------------------------------
# Frames: tiles side by side, optional caption


def grid_shape(n: int, nrow: int | None) -> tuple[int, int]:
    """(rows, columns) for ``n`` tiles with ``nrow`` tiles per row (default: one row)."""
    cols = n if not nrow else max(1, min(int(nrow), n))
    return -(-n // cols), cols


def compose_frame(tiles: np.ndarray, *, nrow: int | None = None, pad: int = 2) -> np.ndarray:
    """uint8 tiles [M, R, R, 3] -> one HxWx3 frame, ``nrow`` tiles per row, ``pad`` black
    pixels between tiles (none for a single tile)."""
    m, h, w, _ = tiles.shape
    if m == 1:
        return tiles[0]
    rows, cols = grid_shape(m, nrow)
    out = np.zeros((rows * h + (rows - 1) * pad, cols * w + (cols - 1) * pad, 3), np.uint8)
    for i in range(m):
        r, c = divmod(i, cols)
        out[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = tiles[i]
    return out


class Captioner:
    """Adds a strip under each frame with a caption (Pillow's default font, centred)."""

    def __init__(self, width: int, tile: int):
        from PIL import ImageFont

        size = int(min(max(10, round(tile / 10)), 28))
        try:
            self.font = ImageFont.load_default(size=size)
        except (TypeError, ImportError, OSError):     # no FreeType: the bitmap font
            self.font = ImageFont.load_default()
        top, bottom = self._bbox("Ag")[1::2]
        self.height = (bottom - top) + 2 * max(3, size // 3)
        self.height += self.height % 2
        self.width = width
        self._cache: dict[str, np.ndarray] = {}

    def _bbox(self, text: str) -> tuple[int, int, int, int]:
        from PIL import Image, ImageDraw

        return ImageDraw.Draw(Image.new("RGB", (1, 1))).textbbox((0, 0), text, font=self.font)

    def _fit(self, text: str) -> str:
        if self._bbox(text)[2] <= self.width - 4:
            return text
        while text and self._bbox(text + "...")[2] > self.width - 4:
            text = text[:-1]
        return text + "..."

    def strip(self, text: str) -> np.ndarray:
        if text not in self._cache:
            from PIL import Image, ImageDraw

            im = Image.new("RGB", (self.width, self.height), (0, 0, 0))
            shown = self._fit(text)
            left, t, r, b = self._bbox(shown)
            x = (self.width - (r - left)) // 2 - left
            y = (self.height - (b - t)) // 2 - t
            ImageDraw.Draw(im).text((x, y), shown, fill=(255, 255, 255), font=self.font)
            self._cache[text] = np.asarray(im)
        return self._cache[text]

    def __call__(self, frame: np.ndarray, text: str) -> np.ndarray:
        return np.concatenate([frame, self.strip(text)], axis=0)


# --------------------------------------------------------------------------------------
# The streaming sink


def _umask_mode(mode: int) -> int:
    """``mode`` as the process umask would make it (temp files are created 0600/0700)."""
    mask = os.umask(0)
    os.umask(mask)
    return mode & ~mask


def _frame_names(n: int) -> Callable[[int], str]:
    width = max(5, len(str(max(n - 1, 0))))
    return lambda i: f"frame_{i:0{width}d}.png"


def check_frames_dir(path: str | os.PathLike, *, overwrite: bool, option: str = "frames") -> Path:
    """A folder for PNG frames: new, empty, or (with ``overwrite``) holding old frames."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UsageError(f"{p} exists and is not a folder", param=option)
    if p.is_dir() and any(p.iterdir()) and not overwrite:
        raise UsageError(f"{p} is not empty; pass --overwrite to replace its frames", param=option)
    return p


@contextlib.contextmanager
def _staged_dir(target: Path | None, n_frames: int) -> Iterator[Path | None]:
    """A temporary folder beside ``target``; on success its files replace the target's
    ``frame_*.png`` (stale frames of a longer earlier run are removed); on failure it is
    deleted."""
    if target is None:
        yield None
        return
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    except OSError as e:
        raise RuntimeFailure(f"cannot write {target}: {e.strerror or e}") from e
    try:
        yield tmp
        os.chmod(tmp, _umask_mode(0o777))
        if not target.exists():
            os.replace(tmp, target)
            return
        ours = {p.name for p in tmp.iterdir()}
        for old in target.glob("frame_*.png"):
            if old.name not in ours:
                old.unlink()
        for p in tmp.iterdir():
            os.replace(p, target / p.name)
        tmp.rmdir()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_video(frames: Iterable[np.ndarray], out: str | os.PathLike, *, fps: float,
                n_frames: int, frames_dir: str | os.PathLike | None = None,
                progress: Callable[[int], None] | None = None) -> tuple[int, int, int]:
    """Stream HxWx3 uint8 frames into ``out`` (format by extension), atomically; with
    ``frames_dir`` also as PNG files. Returns (frames written, width, height)."""
    from PIL import Image

    fmt = video_format(out)
    name = _frame_names(n_frames)
    count, size = 0, (0, 0)
    with atomic_path(out) as tmp, _staged_dir(Path(frames_dir) if frames_dir else None, n_frames) as fdir:
        writer: FrameWriter | None = None
        try:
            for frame in frames:
                h, w = frame.shape[:2]
                if writer is None:
                    size = (w, h)
                    writer = fmt.writer(tmp, size, fps)
                elif (w, h) != size:
                    raise ValueError(f"frame {count} is {w}x{h}, expected {size[0]}x{size[1]}")
                writer.append(frame)
                if fdir is not None:
                    Image.fromarray(frame).save(fdir / name(count), compress_level=4)
                count += 1
                if progress is not None:
                    progress(count)
            if writer is None:
                raise ValueError("no frames to write")
            w_, writer = writer, None
            w_.close()
            os.chmod(tmp, _umask_mode(0o666))
        except BaseException:
            if writer is not None:
                with contextlib.suppress(Exception):     # keep the original error
                    writer.abort()
            raise
    return count, size[0], size[1]
