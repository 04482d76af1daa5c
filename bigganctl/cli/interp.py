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
    CompileModeOpt,
    CompileOpt,
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
    compile_value,
)
from .render import emit_json, invoked_command, rich_reporter

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
    compile_: CompileOpt = False,
    compile_mode: CompileModeOpt = None,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    overwrite: OverwriteOpt = False,
) -> None:
    from ..api.interp import interp as render
    from ..parsing import parse_float, split_csv

    doc = render(split_csv(cls) if cls else [], out, seed=seed, seeds=seeds, steps=steps, fps=fps,
                 psi=parse_float(trunc, option="--trunc"), z=z, ease=ease, loop=loop, frames=frames,
                 caption=caption, nrow=nrow, model=model, weights=weights, device=device, dtype=dtype,
                 batch_size=batch_size, overwrite=overwrite, command=invoked_command(),
                 progress=rich_reporter(quiet=quiet, transient=False),
                 compile=compile_value(compile_, compile_mode))
    if json_out:
        emit_json({k: doc[k] for k in ("out", "manifest_path", "frames_dir", "manifest")})
    else:
        info = doc["info"]
        typer.echo(f"{out}: {info.frames} frames, {info.width}x{info.height}, {info.fps:g} fps "
                   f"({info.frames / info.fps:.2f} s)")


def register(app: typer.Typer) -> None:
    app.command("interp", help=HELP, no_args_is_help=True)(interp)
