"""``bigganctl interp``: class-interpolation videos (mp4, gif, webp), streamed to the encoder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .options import (
    DEFAULT_MODEL,
    OUTPUT_PANEL,
    SAMPLING_PANEL,
    BatchSizeOpt,
    ClassOpt,
    DeviceOpt,
    DtypeOpt,
    JsonOpt,
    ModelOpt,
    OverwriteOpt,
    QuietOpt,
    SeedOpt,
    SeedsOpt,
    TruncOpt,
    WeightsOpt,
)
from .render import emit_json, err

HELP = """Render a video that moves through the given classes (class condition interpolated, z held fixed per seed unless --z slerp), streamed frame by frame to the encoder.

Each segment between consecutive classes has --steps frames; without --loop a final frame sits on the last class (2 classes, --steps 12 -> 13 frames); --loop adds the way back to the first class and drops that end frame (seamless repeat: 2 classes -> 24 frames). The frame on a class equals `bigganctl sample` for that class, seed and psi. Several seeds (--seeds 0-3) play side by side. A manifest is written beside the video (FILE.json). See docs/interp.md.

Examples:

  bigganctl interp --class 207 --class 1 --steps 12 --fps 12 --out v.mp4

  bigganctl interp -c "golden retriever" -c goldfish -c 88 --loop --ease smooth --caption --out tour.gif

  bigganctl interp -c 207 -c 1 --seeds 0-3 --z slerp --trunc 0.4 --out grid.webp --frames frames/

  bigganctl interp -c 207 --z slerp --seeds 0-5 --loop --out walk.mp4   (one class: a walk through seeds)
"""

StepsOpt = Annotated[int, typer.Option(
    "--steps", metavar="N", rich_help_panel=SAMPLING_PANEL,
    help="Frames per segment (>= 2); frame k*N sits exactly on waypoint k.")]
FpsOpt = Annotated[float, typer.Option(
    "--fps", metavar="F", rich_help_panel=OUTPUT_PANEL, help="Frames per second (> 0; .gif at most 50).")]
ZOpt = Annotated[str, typer.Option(
    "--z", metavar="fixed|slerp", rich_help_panel=SAMPLING_PANEL,
    help="fixed: one z per seed for the whole video; slerp: waypoint k uses seed S+k, "
         "spherical interpolation between them.")]
EaseOpt = Annotated[str, typer.Option(
    "--ease", metavar="linear|smooth", rich_help_panel=SAMPLING_PANEL,
    help="Timing within each segment: linear, or smooth (smoothstep: eases in and out of each class).")]
LoopOpt = Annotated[bool, typer.Option(
    "--loop", rich_help_panel=SAMPLING_PANEL, help="Return to the first class (seamless repeat).")]
OutOpt = Annotated[Path, typer.Option(
    "--out", "-o", metavar="FILE.mp4|.gif|.webp", rich_help_panel=OUTPUT_PANEL,
    help="The video; format by extension: .mp4 (H.264, via imageio-ffmpeg), .gif, .webp (Pillow).")]
FramesOpt = Annotated[Optional[Path], typer.Option(
    "--frames", metavar="DIR", rich_help_panel=OUTPUT_PANEL,
    help="Also write every frame as PNG (frame_00000.png, ...) into DIR.")]
CaptionOpt = Annotated[bool, typer.Option(
    "--caption", rich_help_panel=OUTPUT_PANEL,
    help="Caption strip under the frames with the name of the nearest class.")]
NrowOpt = Annotated[Optional[int], typer.Option(
    "--nrow", metavar="K", rich_help_panel=OUTPUT_PANEL,
    help="Seeds per row of the grid video. Default: all side by side.")]


def interp(
    cls: ClassOpt = None,
    out: OutOpt = ...,
    seed: SeedOpt = None,
    seeds: SeedsOpt = None,
    steps: StepsOpt = 24,
    fps: FpsOpt = 24.0,
    trunc: TruncOpt = "1.0",
    z: ZOpt = "fixed",
    ease: EaseOpt = "linear",
    loop: LoopOpt = False,
    frames: FramesOpt = None,
    caption: CaptionOpt = False,
    nrow: NrowOpt = None,
    model: ModelOpt = DEFAULT_MODEL,
    weights: WeightsOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "fp32",
    batch_size: BatchSizeOpt = None,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    overwrite: OverwriteOpt = False,
) -> None:
    from .._io import check_writable_target, write_json
    from ..classes import resolve_classes
    from ..errors import UsageError
    from ..interp import make_path, waypoint_captions
    from ..media import manifest_path
    from ..parsing import parse_float, parse_range, split_csv
    from ..registry import REGISTRY
    from ..runtime import resolve_device, resolve_dtype
    from ..sampler import invoked_command
    from ..sampling import check_psi
    from ..video import check_frames_dir, check_video_options, interp_manifest

    # Everything the user typed is checked before the model loads.
    check_video_options(out, fps)
    check_writable_target(out, overwrite=overwrite, option="--out")
    check_writable_target(manifest_path(out), overwrite=overwrite, option="--out")
    if frames is not None:
        check_frames_dir(frames, overwrite=overwrite)
    if seeds is not None and seed is not None:
        raise UsageError("give --seed or --seeds, not both", option="--seeds")
    seed_list = parse_range(seeds, option="--seeds") if seeds is not None else [seed or 0]
    if nrow is not None and nrow < 1:
        raise UsageError(f"must be >= 1, got {nrow}", option="--nrow")
    class_entries = [c.to_dict() for c in resolve_classes(split_csv(cls))] if cls else []
    indices = [e["index"] for e in class_entries]
    path = make_path(indices, seed_list, steps=steps, ease=ease, z_mode=z, loop=loop)
    psi = parse_float(trunc, option="--trunc")
    if model in REGISTRY:
        check_psi(psi, REGISTRY[model].truncation)

    from ..loader import load_generator

    G = load_generator(model, weights=weights, device=resolve_device(device), dtype=resolve_dtype(dtype))
    psi = check_psi(psi, G.truncation)
    if any(i >= G.num_classes for i in indices):
        raise UsageError(f"this model has {G.num_classes} classes", option="--class")

    by_index = {e["index"]: e for e in class_entries}
    names = [by_index[c]["name"] for c in path.classes]
    captions = waypoint_captions(path, names) if caption else None
    info = _render(G, path, out, psi=psi, fps=fps, captions=captions, nrow=nrow,
                   frames_dir=frames, batch_size=batch_size, quiet=quiet)

    manifest = interp_manifest(
        G, path, info, psi=psi, classes=[by_index[c] for c in dict.fromkeys(path.classes)],
        captions=caption, nrow=nrow, frames_dir=str(frames) if frames is not None else None,
        command=invoked_command())
    mpath = manifest_path(out)
    write_json(mpath, manifest)
    if json_out:
        emit_json({"out": str(out), "manifest_path": str(mpath),
                   "frames_dir": manifest["frames_dir"], "manifest": manifest})
    else:
        typer.echo(f"{out}: {info.frames} frames, {info.width}x{info.height}, {info.fps:g} fps "
                   f"({info.frames / info.fps:.2f} s)")


def _render(G, path, out, *, quiet: bool, **kw):
    """render_interp with a progress bar on stderr."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from ..video import render_interp

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=err, disable=quiet,
                  transient=False) as bar:
        task = bar.add_task(f"rendering {Path(out).name}", total=path.n_frames)
        return render_interp(G, path, out, progress=lambda n: bar.update(task, completed=n), **kw)


def register(app: typer.Typer) -> None:
    app.command("interp", help=HELP, no_args_is_help=True)(interp)
