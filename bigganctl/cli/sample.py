"""``bigganctl sample``: a grid of class-conditional truncated samples (plus files, npz)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..api import common
from ..api import sample as core
from ..api.common import model_truncation
from ..classes import resolve_classes
from ..parsing import parse_float
from ..progress import task
from ..distributed import main_decides, session
from ..runtime import resolve_device, resolve_dtype
from ..sampling import check_psi, resolve_seeds
from .options import (
    DEFAULT_MODEL,
    OUTPUT_PANEL,
    BatchSizeOpt,
    ClassOpt,
    CompileModeOpt,
    CompileOpt,
    DeviceOpt,
    DtypeOpt,
    JsonOpt,
    ModelOpt,
    NOpt,
    OverwriteOpt,
    QuietOpt,
    SeedOpt,
    SeedsOpt,
    TruncOpt,
    WeightsOpt,
    compile_value,
)
from .render import emit_json, invoked_command, rich_reporter

HELP = (
    "Generate a grid of class-conditional samples (one row per class).\n\n"
    "Every output gets a JSON manifest beside it (FILE.json; DIR/manifest.json for --images) "
    "with the model, weights sha256, classes, seeds, psi and its convention, dtype, device and "
    "versions. Rows share their noise: --n N --seed S uses seeds S..S+N-1 for every class "
    f"(default --n {core.DEFAULT_N}).\n\n"
    f"Default classes: {', '.join(map(str, core.DEFAULT_CLASSES))}. Default --out: "
    "samples/MODEL_CLASSES_psiPSI_seedsRANGE.png. Existing files are kept unless --overwrite.\n\n"
    "Examples:\n\n"
    "  bigganctl sample --class 207 --trunc 0.5 --out dog.png\n\n"
    "  bigganctl sample -c \"golden retriever,goldfish\" -c n01443537 --n 4 --trunc 0.4 --out g.png\n\n"
    "  bigganctl sample --class 207 --seeds 2-3,10 --trunc 0.5 --out cols.webp --images samples/\n\n"
    "  bigganctl sample --weights random --class 1 --n 64 --no-grid --npz batch.npz --json\n"
)

def sample_cmd(
    classes: ClassOpt = None,
    n: NOpt = None,
    seed: SeedOpt = 0,
    seeds: SeedsOpt = None,
    trunc: TruncOpt = "1.0",
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", metavar="FILE", rich_help_panel=OUTPUT_PANEL,
        help="Grid image (.png, .jpg, .jpeg, .webp). Default samples/MODEL_CLASSES_psiPSI_seedsRANGE.png.")] = None,
    images: Annotated[Optional[Path], typer.Option(
        "--images", metavar="DIR", rich_help_panel=OUTPUT_PANEL,
        help="Also write one PNG per sample: DIR/207_golden_retriever_seed0003.png.")] = None,
    npz: Annotated[Optional[Path], typer.Option(
        "--npz", metavar="FILE", rich_help_panel=OUTPUT_PANEL,
        help="Also write an ADM-style batch: arr_0 uint8 NHWC images, arr_1 int64 labels.")] = None,
    nrow: Annotated[Optional[int], typer.Option(
        "--nrow", metavar="K", rich_help_panel=OUTPUT_PANEL,
        help="Images per grid row. Default: one row per class.")] = None,
    grid: Annotated[bool, typer.Option(
        "--grid/--no-grid", rich_help_panel=OUTPUT_PANEL,
        help="Write the grid (--no-grid: only --images / --npz).")] = True,
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
    # 1. every input checked before any work (exit 2 on the first bad one)
    infos = resolve_classes(classes if classes else list(core.DEFAULT_CLASSES))
    cols = resolve_seeds(n, seed, seeds)
    psi = check_psi(parse_float(trunc, option="--trunc"), model_truncation(model) or "paper")
    resolve_device(device)
    dt = resolve_dtype(dtype)
    if grid and out is None:
        out = core.default_out(model, infos, cols, psi)
    command = invoked_command() or _command_line(
        classes, [("--n", n), ("--seed", seed), ("--seeds", seeds), ("--trunc", trunc), ("--out", out),
                  ("--images", images), ("--npz", npz), ("--nrow", nrow), ("--model", model),
                  ("--weights", weights), ("--device", device), ("--dtype", dtype), ("--batch-size", batch_size),
                  ("--compile-mode", compile_mode)],
        [("--compile", compile_ and compile_mode is None), ("--no-grid", not grid), ("--json", json_out),
         ("--quiet", quiet), ("--overwrite", overwrite)])
    with session(device) as (d, dev):            # torchrun: one share per process, rank 0 writes
        outputs = main_decides(lambda: core.plan_outputs(
            out=out, images_dir=images, npz=npz, classes=infos, seeds=cols, nrow=nrow, grid=grid,
            overwrite=overwrite), d, what="checking the outputs")

        # 2. load (fails with exit 1 and the loader's advice when weights are unavailable),
        #    then generate with a progress bar on stderr
        shown = rich_reporter(quiet=quiet or not d.is_main)
        G = common.open_generator(model, weights, dev, dt, progress=shown,
                                  compile=compile_value(compile_, compile_mode))
        with task(shown, "sampling", total=len(infos) * len(cols)) as step:
            result = core.sample(model=G, classes=infos, seeds=cols, psi=psi, batch_size=batch_size,
                                 progress=lambda done, total: step(done), dist=d)
        if not d.is_main:
            return
        # 3. write (rank 0 only) and report
        doc = core.write_outputs(outputs, result, command=command)
    if json_out:
        emit_json(doc)
    else:
        for kind, path in doc["outputs"].items():
            typer.echo(f"{kind}: {path}")


def _command_line(classes: list[str] | None, values: list[tuple[str, Any]], flags: list[tuple[str, bool]]) -> str:
    """The command line rebuilt from the parsed options (when not run as a program)."""
    args = ["bigganctl", "sample"]
    for c in classes or ():
        args += ["--class", c]
    args += [a for flag, v in values if v is not None for a in (flag, str(v))]
    args += [flag for flag, on in flags if on]
    return shlex.join(args)


def register(app: typer.Typer) -> None:
    app.command("sample", help=HELP, no_args_is_help=False)(sample_cmd)
