"""Videos: writers chosen by extension, frame composition, and the streaming render loop.

Writers (a table, :data:`FORMATS`):

- ``.mp4``: H.264 (libx264, yuv420p, CRF 18, ``+faststart``) through the ffmpeg binary
  that the ``imageio-ffmpeg`` package bundles; frames are piped to ffmpeg as they come,
  so memory does not grow with the video's length. Odd frame sizes are padded by one
  pixel (yuv420p needs even sizes).
- ``.gif``: Pillow, looping forever; each frame gets its own 256-colour palette (median
  cut, Floyd-Steinberg dither) and is written as it comes (streaming). GIF delays are
  whole hundredths of a second; they alternate so the average rate is exactly ``fps``.
- ``.webp``: Pillow, animated and looping (lossy, quality 90). Pillow's encoder takes the
  whole sequence at once, so frames are spooled to an unnamed temporary file beside the
  output and read back one at a time: memory stays flat, disk use is W*H*3 bytes a frame.
  libwebp merges identical consecutive frames (keeping the timing).

Every output is atomic: written under a temporary name, renamed when complete; a failure
or Ctrl-C removes it (and a ``--frames`` folder in progress).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import platform
import shutil
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch

from ._io import atomic_path
from .errors import RuntimeFailure, UsageError
from .generate import default_batch_size, iter_uint8, model_device
from .interp import InterpPath, check_fps, frame_conditions, waypoint_noise

# --------------------------------------------------------------------------------------
# Writers


class FrameWriter(Protocol):
    """Receives HxWx3 uint8 frames of one size; ``close`` finishes the file, ``abort``
    stops without finishing (the caller deletes the temporary file)."""

    def append(self, frame: np.ndarray) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...


def _ffmpeg_exe() -> str:
    """The ffmpeg binary of imageio-ffmpeg, or RuntimeFailure saying what to install."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise RuntimeFailure(
            "writing .mp4 needs the ffmpeg backend, which is not installed",
            hint="pip install imageio-ffmpeg  (or write a .gif or .webp instead)") from None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as e:
        raise RuntimeFailure(
            f"imageio-ffmpeg is installed but found no ffmpeg binary ({e})",
            hint="pip install --force-reinstall imageio-ffmpeg, or set IMAGEIO_FFMPEG_EXE "
                 "to an ffmpeg with libx264") from None


def _check_pillow_webp() -> None:
    from PIL import features

    if not features.check("webp"):
        raise RuntimeFailure("this Pillow was built without WebP support",
                             hint="pip install --upgrade pillow  (the PyPI wheels include WebP)")


def _check_pillow_gif() -> None:
    from PIL import GifImagePlugin

    if not (hasattr(GifImagePlugin, "getheader") and hasattr(GifImagePlugin, "getdata")):
        raise RuntimeFailure("this Pillow lacks GifImagePlugin.getheader/getdata",
                             hint="pip install 'pillow>=10'")


class Mp4Writer:
    """H.264 in MP4 through an ffmpeg subprocess fed raw RGB frames on stdin."""

    CRF = 18

    def __init__(self, path: Path, size: tuple[int, int], fps: float):
        exe = _ffmpeg_exe()
        w, h = size
        self._pad = (h % 2, w % 2)
        rate = Fraction(fps).limit_denominator(1001)
        cmd = [exe, "-hide_banner", "-loglevel", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w + w % 2}x{h + h % 2}",
               "-framerate", f"{rate.numerator}/{rate.denominator}", "-i", "pipe:0",
               "-an", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", str(self.CRF),
               "-preset", "medium", "-movflags", "+faststart", "-f", "mp4", str(path)]
        self._err = tempfile.TemporaryFile()
        try:
            self._p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                       stderr=self._err, start_new_session=True)
        except OSError as e:
            self._err.close()
            raise RuntimeFailure(f"cannot start ffmpeg ({exe}): {e.strerror or e}") from e

    def _stderr_tail(self) -> str:
        self._err.seek(0)
        text = self._err.read().decode("utf-8", "replace").strip()
        return text[-800:] or "no message"

    def append(self, frame: np.ndarray) -> None:
        if any(self._pad):
            frame = np.pad(frame, ((0, self._pad[0]), (0, self._pad[1]), (0, 0)), mode="edge")
        try:
            self._p.stdin.write(np.ascontiguousarray(frame, dtype=np.uint8).tobytes())
        except (BrokenPipeError, OSError):
            self._p.wait()
            raise RuntimeFailure(f"ffmpeg stopped (exit {self._p.returncode}): {self._stderr_tail()}") from None

    def close(self) -> None:
        try:
            self._p.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        rc = self._p.wait()
        try:
            if rc != 0:
                raise RuntimeFailure(f"ffmpeg failed (exit {rc}): {self._stderr_tail()}")
        finally:
            self._err.close()

    def abort(self) -> None:
        if self._p.poll() is None:
            self._p.kill()
        with contextlib.suppress(OSError):
            self._p.stdin.close()
        self._p.wait()
        self._err.close()


def gif_delay_cs(i: int, fps: float) -> int:
    """GIF delay of frame ``i`` in 1/100 s; the running sum tracks ``i * 100 / fps``.

    >>> [gif_delay_cs(i, 12) for i in range(6)]
    [8, 9, 8, 8, 9, 8]
    """
    return round((i + 1) * 100 / fps) - round(i * 100 / fps)


class GifWriter:
    """Looping GIF, streamed: header on the first frame, then one block per frame."""

    MAX_FPS = 50.0   # delays under 2/100 s are slowed down by browsers

    def __init__(self, path: Path, size: tuple[int, int], fps: float):
        _check_pillow_gif()
        self._fh = open(path, "wb")
        self._fps = fps
        self._i = 0

    def append(self, frame: np.ndarray) -> None:
        from PIL import GifImagePlugin, Image

        im = Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8)).quantize(colors=256)
        if self._i == 0:
            header, _ = GifImagePlugin.getheader(im, None, {"loop": 0})
            for block in header:
                self._fh.write(block)
        delay = max(gif_delay_cs(self._i, self._fps), 1)
        for block in GifImagePlugin.getdata(im, (0, 0), duration=delay * 10, include_color_table=True):
            self._fh.write(block)
        self._i += 1

    def close(self) -> None:
        self._fh.write(b";")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()

    def abort(self) -> None:
        self._fh.close()


def _raw_frames_class():
    """A read-only Pillow image over a spool of raw RGB frames (one frame in memory)."""
    from PIL import ImageFile

    tile = getattr(ImageFile, "_Tile", lambda *a: tuple(a))

    class RawFrames(ImageFile.ImageFile):
        format = "BIGGANCTL_RAW"
        format_description = "bigganctl spool of raw RGB frames"
        _close_exclusive_fp_after_loading = False
        MAGIC = b"BGCTLRAW"
        HEADER = 16

        def _open(self) -> None:
            head = self.fp.read(self.HEADER)
            if head[:8] != self.MAGIC:
                raise SyntaxError("not a bigganctl frame spool")
            w, h = struct.unpack("<II", head[8:16])
            self._size = (w, h)
            self._mode = "RGB"
            self._frame_bytes = w * h * 3
            self.fp.seek(0, os.SEEK_END)
            self.n_frames = (self.fp.tell() - self.HEADER) // self._frame_bytes
            self.is_animated = self.n_frames > 1
            self._spool = self.fp            # Pillow drops self.fp after each load
            self._cur = -1
            self.seek(0)

        def seek(self, frame: int) -> None:
            if not self._seek_check(frame):
                return
            self._cur = frame
            self.fp = self._spool
            offset = self.HEADER + frame * self._frame_bytes
            self.tile = [tile("raw", (0, 0, *self.size), offset, ("RGB", 0, 1))]

        def tell(self) -> int:
            return self._cur

    return RawFrames


class WebpWriter:
    """Animated, looping WebP: frames spooled to an unnamed temp file, encoded on close."""

    QUALITY = 90

    def __init__(self, path: Path, size: tuple[int, int], fps: float):
        _check_pillow_webp()
        self._path = path
        self._fps = fps
        self._spool = tempfile.TemporaryFile(dir=path.parent)
        self._spool.write(b"BGCTLRAW" + struct.pack("<II", *size))

    def append(self, frame: np.ndarray) -> None:
        self._spool.write(np.ascontiguousarray(frame, dtype=np.uint8).tobytes())

    def close(self) -> None:
        try:
            self._spool.flush()
            self._spool.seek(0)
            src = _raw_frames_class()(self._spool)
            src.save(self._path, format="WEBP", save_all=True, duration=1000.0 / self._fps,
                     loop=0, quality=self.QUALITY, method=4)
        finally:
            self._spool.close()

    def abort(self) -> None:
        self._spool.close()


@dataclass(frozen=True)
class VideoFormat:
    ext: str
    description: str
    writer: Callable[[Path, tuple[int, int], float], FrameWriter]
    check_backend: Callable[[], Any]
    max_fps: float | None = None


#: Output formats by file extension.
FORMATS: dict[str, VideoFormat] = {
    ".mp4": VideoFormat(".mp4", f"H.264 MP4 (libx264, yuv420p, CRF {Mp4Writer.CRF}) via imageio-ffmpeg",
                        Mp4Writer, _ffmpeg_exe),
    ".gif": VideoFormat(".gif", "looping GIF (Pillow, per-frame palette)", GifWriter, _check_pillow_gif,
                        max_fps=GifWriter.MAX_FPS),
    ".webp": VideoFormat(".webp", f"animated WebP (Pillow, lossy quality {WebpWriter.QUALITY})",
                         WebpWriter, _check_pillow_webp),
}


def video_format(path: str | os.PathLike, *, option: str = "--out") -> VideoFormat:
    """The format for a path's extension, or UsageError listing the known ones."""
    ext = Path(path).suffix.lower()
    try:
        return FORMATS[ext]
    except KeyError:
        shown = f"{ext!r}" if ext else "no extension"
        raise UsageError(f"{shown}: video format not supported (use {', '.join(FORMATS)})",
                         option=option) from None


def check_video_options(path: str | os.PathLike, fps: float, *, option: str = "--out") -> VideoFormat:
    """Validate the output path's format and ``fps`` for it; check the backend exists
    (RuntimeFailure naming the package to install)."""
    fmt = video_format(path, option=option)
    fps = check_fps(fps)
    if fmt.max_fps is not None and fps > fmt.max_fps:
        raise UsageError(f"{fmt.ext} plays at most {fmt.max_fps:g} fps reliably (delays are whole "
                         f"1/100 s), got {fps:g}", option="--fps")
    fmt.check_backend()
    return fmt


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


def check_frames_dir(path: str | os.PathLike, *, overwrite: bool, option: str = "--frames") -> Path:
    """A folder for PNG frames: new, empty, or (with ``overwrite``) holding old frames."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UsageError(f"{p} exists and is not a folder", option=option)
    if p.is_dir() and any(p.iterdir()) and not overwrite:
        raise UsageError(f"{p} is not empty; pass --overwrite to replace its frames", option=option)
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


# --------------------------------------------------------------------------------------
# Class-interpolation videos


def iter_interp_tiles(G, path: InterpPath, psi: float, *, batch_size: int | None = None
                      ) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield ``(frame, uint8 [columns, 3, R, R])`` in order, generating batches of whole
    frames through :func:`bigganctl.generate.iter_uint8` (memory bounded by the batch)."""
    noise = waypoint_noise(path, G.z_dim, psi, G.truncation)
    bs = batch_size or default_batch_size(model_device(G), G.resolution)
    m = path.n_columns
    per = max(1, bs // m)
    for lo in range(0, path.n_frames, per):
        hi = min(lo + per, path.n_frames)
        y, z = frame_conditions(path, lo, hi, num_classes=G.num_classes, noise=noise,
                                psi=psi, convention=G.truncation)
        chunk = torch.cat([x for _, x in iter_uint8(G, y, [], psi, batch_size=bs, z=z)])
        for i in range(hi - lo):
            yield lo + i, chunk[i * m:(i + 1) * m]


@dataclass(frozen=True)
class VideoInfo:
    path: str
    frames: int
    width: int
    height: int
    fps: float
    seconds: float          # wall-clock time spent rendering


def render_interp(G, path: InterpPath, out: str | os.PathLike, *, psi: float, fps: float,
                  captions: Sequence[str] | None = None, nrow: int | None = None,
                  frames_dir: str | os.PathLike | None = None, batch_size: int | None = None,
                  progress: Callable[[int], None] | None = None) -> VideoInfo:
    """Render ``path`` with generator ``G`` into ``out`` (mp4/gif/webp), streamed.

    ``captions``: one text per waypoint, shown under the frame nearest to it.
    """
    check_video_options(out, fps)
    if captions is not None and len(captions) != path.n_waypoints:
        raise ValueError(f"{len(captions)} captions for {path.n_waypoints} waypoints")
    t0 = time.perf_counter()
    _, cols = grid_shape(path.n_columns, nrow)
    width = cols * G.resolution + (cols - 1) * 2
    cap = Captioner(width, G.resolution) if captions is not None else None

    def frames() -> Iterator[np.ndarray]:
        for f, tiles in iter_interp_tiles(G, path, psi, batch_size=batch_size):
            frame = compose_frame(tiles.permute(0, 2, 3, 1).numpy(), nrow=nrow)
            if cap is not None:
                frame = cap(frame, captions[path.nearest_waypoint(f)])
            yield np.ascontiguousarray(frame)

    n, w, h = write_video(frames(), out, fps=fps, n_frames=path.n_frames,
                          frames_dir=frames_dir, progress=progress)
    return VideoInfo(str(out), n, w, h, fps, time.perf_counter() - t0)


def versions() -> dict[str, str | None]:
    """Versions recorded in manifests."""
    from importlib.metadata import PackageNotFoundError, version

    from . import __version__

    out: dict[str, str | None] = {"bigganctl": __version__, "python": platform.python_version()}
    for pkg in ("torch", "numpy", "pillow", "imageio-ffmpeg"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def interp_manifest(G, path: InterpPath, info: VideoInfo, *, psi: float, classes: list[dict],
                    captions: bool, nrow: int | None, frames_dir: str | None,
                    command: str | None = None) -> dict[str, Any]:
    """Everything needed to reproduce (and identify) a rendered video."""
    from .runtime import dtype_name
    from .sampling import CONVENTIONS

    p = next(G.parameters(), None)
    spec = getattr(G, "spec", None)
    return {
        "kind": "bigganctl.interp",
        "video": info.path,
        "format": FORMATS[Path(info.path).suffix.lower()].description,
        "frames": info.frames,
        "width": info.width,
        "height": info.height,
        "fps": info.fps,
        "duration_s": round(info.frames / info.fps, 6),
        "model": getattr(spec, "name", None) or type(G).__name__,
        "resolution": G.resolution,
        "weights": getattr(G, "weights_info", None),
        "classes": classes,
        "waypoint_classes": list(path.classes),
        "seeds": [list(col) for col in path.seeds],
        "psi": psi,
        "truncation": G.truncation,
        "truncation_rule": CONVENTIONS.get(G.truncation),
        "steps": path.steps,
        "ease": path.ease,
        "z": path.z_mode,
        "loop": path.loop,
        "waypoint_frames": path.waypoint_frames(),
        "frame_rule": "segments*steps + 1 (end frame on the last waypoint)" if not path.loop
                      else "segments*steps (loops back to the first frame)",
        "caption": captions,
        "nrow": nrow,
        "frames_dir": frames_dir,
        "dtype": dtype_name(p.dtype) if p is not None else None,
        "device": str(p.device) if p is not None else None,
        "render_seconds": round(info.seconds, 3),
        "versions": versions(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
    }


__all__ = [
    "FORMATS", "VideoFormat", "video_format", "check_video_options", "write_video",
    "compose_frame", "Captioner", "render_interp", "iter_interp_tiles", "interp_manifest",
    "check_frames_dir", "gif_delay_cs",
]
