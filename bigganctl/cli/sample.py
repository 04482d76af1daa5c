"""``bigganctl sample``: a grid of class-conditional truncated samples (plus files, npz)."""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..api import sample as core
from ..api import sample_stream as stream
from ..api.export import GRID_MAX
from ..classes import resolve_classes
from ..parsing import parse_float
from ..runtime.distributed import main_decides, session
from ..runtime.device import resolve_device, resolve_dtype
from ..errors import UsageError
from ..noise import EVAL_PLANS, resolve_seeds
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
    "  bigganctl sample --weights random --class 1 --n 64 --no-grid --npz batch.npz --json\n\n"
    "Evaluation batches (--classes balanced|random: the samples `eval --n N --seed S --trunc PSI` "
    "measures), written to disk as batches finish, resumable after a kill (re-run the same command):\n\n"
    "  bigganctl sample --classes balanced --n 50000 --seed 0 --trunc 1.0 --npz samples50k.npz\n\n"
    "  torchrun --nproc_per_node 8 -m bigganctl sample --classes balanced --num-samples 50000 --npz s.npz\n"
)

PlanOpt = Annotated[Optional[str], typer.Option(
    "--classes", metavar="balanced|random", rich_help_panel=SAMPLING_PANEL,
    help="An evaluation plan instead of the grid, as `eval` and `sweep` generate: sample i has seed "
         "S+i and class i mod 1000 (balanced) or a class drawn from numpy's default_rng(S) (random). "
         "With --npz / --images writes exactly the samples `eval --n N --seed S --trunc PSI` measures.")]


def sample_cmd(
    classes: ClassOpt = None,
    plan: PlanOpt = None,
    n: NOpt = None,
    seed: SeedOpt = 0,
    seeds: SeedsOpt = None,
    trunc: TruncOpt = "1.0",
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", metavar="FILE", rich_help_panel=OUTPUT_PANEL,
        help="Grid image (.png, .jpg, .jpeg, .webp). Default samples/MODEL_CLASSES_psiPSI_seedsRANGE.png.")] = None,
    images: Annotated[Optional[Path], typer.Option(
        "--images", metavar="DIR", rich_help_panel=OUTPUT_PANEL,
        help="Also write one PNG per sample: DIR/207_golden_retriever_seed0003.png (written as batches finish).")] = None,
    npz: Annotated[Optional[Path], typer.Option(
        "--npz", metavar="FILE", rich_help_panel=OUTPUT_PANEL,
        help="Also write an ADM-style batch: arr_0 uint8 NHWC images, arr_1 int64 labels "
             "(written as batches finish, constant memory, resumable).")] = None,
    nrow: Annotated[Optional[int], typer.Option(
        "--nrow", metavar="K", rich_help_panel=OUTPUT_PANEL,
        help="Images per grid row. Default: one row per class.")] = None,
    grid: Annotated[Optional[bool], typer.Option(
        "--grid/--no-grid", rich_help_panel=OUTPUT_PANEL, show_default=False,
        help=f"Write the grid (--no-grid: only --images / --npz). Default: a grid up to "
             f"{GRID_MAX} images, none beyond when --npz / --images is given.")] = None,
    model: ModelOpt = DEFAULT_MODEL,
    weights: WeightsOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "fp32",
    batch_size: BatchSizeOpt = None,
    compile_: CompileOpt = False,
    compile_mode: CompileModeOpt = None,
    resume: Annotated[bool, typer.Option(
        "--resume/--no-resume", rich_help_panel=OUTPUT_PANEL,
        help="--npz / --images: continue a killed run of the same command where it stopped (the "
             "same bytes as an uninterrupted run); --no-resume starts over.")] = True,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    overwrite: OverwriteOpt = False,
) -> None:
    # 1. every input checked before any work (exit 2 on the first bad one)
    infos, cols, total = _plan_inputs(classes, plan, n, seed, seeds)
    psi = parse_float(trunc, option="--trunc")         # checked against the model's convention by the core
    resolve_device(device)
    dt = resolve_dtype(dtype)
    grid = _grid_choice(grid, out, total, streamed=npz is not None or images is not None)
    if grid and out is None:
        out = core.default_out(model, infos or [], cols, psi) if not plan else \
            Path("samples") / f"{Path(model).name}_{plan}_psi{psi:g}_seed{seed}_n{total}.png"
    command = invoked_command() or _command_line(
        classes, [("--classes", plan), ("--n", n), ("--seed", seed), ("--seeds", seeds), ("--trunc", trunc),
                  ("--out", out), ("--images", images), ("--npz", npz), ("--nrow", nrow), ("--model", model),
                  ("--weights", weights), ("--device", device), ("--dtype", dtype), ("--batch-size", batch_size),
                  ("--compile-mode", compile_mode)],
        [("--compile", compile_ and compile_mode is None), ("--no-grid", not grid), ("--no-resume", not resume),
         ("--json", json_out), ("--quiet", quiet), ("--overwrite", overwrite)])
    with session(device) as (d, dev):            # torchrun: one share per process
        shown = rich_reporter(quiet=quiet or not d.is_main)
        if npz is None and images is None:       # a grid alone: in memory, rank 0 writes it
            doc = _grid_alone(model, weights, dev, dt, compile_value(compile_, compile_mode), plan, infos, cols,
                              seed, psi, out, nrow, overwrite, batch_size, shown, command, d)
            if doc is None:
                return
        else:                                    # streamed to disk, resumable
            doc = stream.run(model=model, weights=weights, device=dev, dtype=dt, compile=compile_value(
                compile_, compile_mode), plan=plan, infos=infos, cols=cols, seed=seed, psi=psi, out=out,
                images=images, npz=npz, nrow=nrow, grid=grid, overwrite=overwrite, resume=resume,
                batch_size=batch_size, progress=shown, command=command, dist=d)
            if doc is None:
                return
    if json_out:
        emit_json(doc)
    else:
        for kind, path in doc["outputs"].items():
            typer.echo(f"{kind}: {path}")


def _grid_alone(model, weights, dev, dt, compile, plan, infos, cols, seed, psi, out, nrow, overwrite,
                batch_size, shown, command, d) -> dict | None:
    t0 = time.time()
    total = len(cols) * (1 if plan else len(infos))
    outputs = main_decides(lambda: core.plan_outputs(
        out=out, images_dir=None, npz=None, classes=infos, seeds=cols, nrow=nrow, grid=True,
        overwrite=overwrite), d, what="checking the outputs")
    result = core.sample(model=model, classes=plan or infos, n=total if plan else None, seed=seed,
                         seeds=None if plan else cols, psi=psi, weights=weights, device=dev, dtype=dt,
                         batch_size=batch_size, progress=shown, dist=d, compile=compile)
    if not d.is_main:
        return None
    doc = core.write_outputs(outputs, result, command=command)
    doc.update(count=total, bytes={"grid": Path(doc["outputs"]["grid"]).stat().st_size},
               resumed_from=0, seconds=round(time.time() - t0, 3), images_per_second=None)
    return doc


def _plan_inputs(classes, plan, n, seed, seeds) -> tuple[list, list[int], int]:
    """(grid classes, seeds, number of images); an evaluation plan has no grid classes."""
    if plan is None:
        infos = resolve_classes(classes if classes else list(core.DEFAULT_CLASSES))
        cols = resolve_seeds(n, seed, seeds)
        return infos, cols, len(infos) * len(cols)
    if plan.strip().lower() not in EVAL_PLANS:
        raise UsageError(f"unknown plan {plan!r} (balanced, random; grid classes go to --class)",
                         param="--classes")
    if classes:
        raise UsageError("give either --class (a grid) or --classes (an evaluation plan)", param="--classes")
    if seeds is not None:
        raise UsageError("an evaluation plan takes --n and --seed (seeds S..S+N-1)", param="seeds")
    cols = resolve_seeds(n, seed, None)
    return [], cols, len(cols)


def _grid_choice(grid: bool | None, out: Path | None, total: int, *, streamed: bool) -> bool:
    """The grid is the default up to GRID_MAX images; beyond, it is left out when --npz /
    --images is given and refused when asked for (a grid of 50,000 tiles is no picture)."""
    asked = grid is True or (grid is None and out is not None)
    if grid is False:
        return False
    if total <= GRID_MAX:
        return True
    if asked:
        raise UsageError(f"a grid of {total} images is too large (at most {GRID_MAX})",
                         param="out" if out is not None else "--grid",
                         hint="pass --no-grid and write the samples with --npz FILE or --images DIR")
    if not streamed:
        raise UsageError(f"{total} images are too many for a grid (at most {GRID_MAX}) and nothing else is "
                         "asked for", param="n", hint="add --npz FILE.npz or --images DIR")
    return False


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
