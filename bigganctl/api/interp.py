"""Class-interpolation videos: :func:`render_interp` (a loaded generator and a path ->
a video, streamed) and :func:`interp` (``bigganctl interp``: options in, video and
manifest out).

The path (waypoints, frame count, easing, slerp) is :mod:`bigganctl.paths`; the
frames come from :func:`bigganctl.generate.iter_interp_tiles`; writers and the sink are
:mod:`bigganctl.media.video` and :mod:`bigganctl.media.frames`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._io import check_writable_target, together, write_json
from ..classes import resolve_classes
from ..checks import check_int
from ..errors import UsageError
from ..generate import iter_interp_tiles
from ..paths import InterpPath, make_path, waypoint_captions
from ..media.frames import Captioner, check_frames_dir, compose_frame, grid_shape, write_video
from ..media.images import manifest_path
from ..media.manifest import interp_manifest
from ..media.video import FORMATS, check_video_options
from ..parsing import parse_range
from ..progress import ProgressArg, Step, as_reporter, task
from ._shared import open_for_psi
from ..types import ClassSpec, Compile, Device, Dtype, Model


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
                  progress: Step | None = None) -> VideoInfo:
    """Render ``path`` with generator ``G`` into ``out`` (mp4/gif/webp), streamed.

    ``captions``: one text per waypoint, shown under the frame nearest to it.
    ``progress(frames_written)`` after every frame.
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


def interp(classes: Sequence[ClassSpec], out: str | os.PathLike, *, seed: int | None = None,
           seeds: str | None = None, steps: int = 24, fps: float = 24.0, psi: float = 1.0,
           z: str = "fixed", ease: str = "linear", loop: bool = False,
           frames: str | os.PathLike | None = None, caption: bool = False, nrow: int | None = None,
           model: Model = "biggan-deep-128", weights: str | None = None, device: Device = "auto",
           dtype: Dtype = "fp32", batch_size: int | None = None, overwrite: bool = False,
           progress: ProgressArg = None, command: str | None = None, compile: Compile = False) -> dict[str, Any]:
    """Render the video ``bigganctl interp`` makes and write its manifest beside it.

    Everything given is checked before the model loads (UsageError naming the option).
    ``compile``: True or a torch.compile mode, the generator runs compiled. ``progress``:
    True (tqdm bars), ``fn(done, total)`` per frame, or a reporter (downloads too). Returns ``{"out", "manifest_path", "frames_dir", "manifest"}``.
    """
    progress = as_reporter(progress)
    check_video_options(out, fps)
    check_writable_target(out, overwrite=overwrite, option="out")
    check_writable_target(manifest_path(out), overwrite=overwrite, option="out")
    if frames is not None:
        check_frames_dir(frames, overwrite=overwrite)
    if seeds is not None and seed is not None:
        raise UsageError("give --seed or --seeds, not both", param="seeds")
    seed_list = parse_range(seeds, option="seeds") if seeds is not None else [seed or 0]
    check_int(nrow, "nrow", optional=True)
    class_entries = [c.to_dict() for c in resolve_classes(list(classes))] if classes else []
    indices = [e["index"] for e in class_entries]
    path = make_path(indices, seed_list, steps=steps, ease=ease, z_mode=z, loop=loop)
    G, psi = open_for_psi(model, psi, weights, device, dtype, progress=progress, compile=compile)
    if any(i >= G.num_classes for i in indices):
        raise UsageError(f"this model has {G.num_classes} classes", param="classes")

    by_index = {e["index"]: e for e in class_entries}
    captions = waypoint_captions(path, [by_index[c]["name"] for c in path.classes]) if caption else None
    with together():                      # the video and its manifest appear together or not at all
        with task(progress, f"rendering {Path(out).name}", total=path.n_frames, unit="frame") as step:
            info = render_interp(G, path, out, psi=psi, fps=fps, captions=captions, nrow=nrow,
                                 frames_dir=frames, batch_size=batch_size, progress=step)
        manifest = interp_manifest(
            G, path, info, psi=psi, classes=[by_index[c] for c in dict.fromkeys(path.classes)],
            captions=caption, nrow=nrow, frames_dir=str(frames) if frames is not None else None,
            video_format=FORMATS[Path(info.path).suffix.lower()].description, command=command)
        mpath = manifest_path(out)
        write_json(mpath, manifest)
    return {"out": str(out), "manifest_path": str(mpath), "frames_dir": manifest["frames_dir"],
            "manifest": manifest, "info": info}
