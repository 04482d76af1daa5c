"""Video writers, chosen by extension (frame composition and the streaming sink that
feeds them: :mod:`.frames`).

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
import os
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol
from collections.abc import Callable

import numpy as np

from ..errors import RuntimeFailure, UsageError
from ..paths import check_fps

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


def video_format(path: str | os.PathLike, *, option: str = "out") -> VideoFormat:
    """The format for a path's extension, or UsageError listing the known ones."""
    ext = Path(path).suffix.lower()
    try:
        return FORMATS[ext]
    except KeyError:
        shown = f"{ext!r}" if ext else "no extension"
        raise UsageError(f"{shown}: video format not supported (use {', '.join(FORMATS)})",
                         param=option) from None


def check_video_options(path: str | os.PathLike, fps: float, *, option: str = "out") -> VideoFormat:
    """Validate the output path's format and ``fps`` for it; check the backend exists
    (RuntimeFailure naming the package to install)."""
    fmt = video_format(path, option=option)
    fps = check_fps(fps)
    if fmt.max_fps is not None and fps > fmt.max_fps:
        raise UsageError(f"{fmt.ext} plays at most {fmt.max_fps:g} fps reliably (delays are whole "
                         f"1/100 s), got {fps:g}", param="fps")
    fmt.check_backend()
    return fmt


__all__ = [
    "FORMATS", "VideoFormat", "video_format", "check_video_options", "gif_delay_cs",
    "FrameWriter", "Mp4Writer", "GifWriter", "WebpWriter",
]
