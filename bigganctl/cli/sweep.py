"""``bigganctl sweep``: the truncation trade-off, measured, tabulated and plotted."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..api.sweep import DEFAULT_GRID, DEFAULT_N, DEFAULT_STRIP_COLUMNS
from .options import (
    N_FLAGS,
    METRIC_PANEL,
    OUTPUT_PANEL,
    SAMPLING_PANEL,
    BatchSizeOpt,
    CheckpointEveryOpt,
    ClassesOpt,
    CompileModeOpt,
    CompileOpt,
    DeviceOpt,
    DtypeOpt,
    ForceOpt,
    InceptionWeightsOpt,
    JsonOpt,
    ModelsOpt,
    OverwriteOpt,
    QuietOpt,
    RefOpt,
    ResumeOpt,
    SeedOpt,
    SummaryOpt,
    WeightsOpt,
    compile_value,
)
from .render import LiveTable, emit_json, invoked_command, note, warn

HELP = f"""Measure the truncation trade-off: one evaluation per psi on the same seeds and classes, tabulated and plotted.

Every psi evaluates the same N samples (sample i: seed S+i, class i of --classes), so the curve is smooth and its differences are due to psi alone; each row equals `bigganctl eval` for that psi alone. The model, the Inception network and the reference statistics are loaded once.

Writes into --out DIR: sweep.csv and sweep.json (one row per (model, psi): psi, convention, fid, is_mean, is_std, kid_mean, kid_std, n, seconds), sweep.png (IS vs FID with points labelled by psi; each metric vs psi), strip.png (one row per psi: the first --strip-columns samples, same z and classes) and manifest.json. Several --model values share one plot and one CSV (a model column).

Resumable: finished rows are kept in DIR; the same command again evaluates only what is missing (an interrupted psi continues from its checkpoint) and returns at once when all is done. Changing N, seed, classes, metrics, reference, model, weights, dtype or Inception weights starts fresh (said on stderr).

Defaults: --trunc {DEFAULT_GRID} (10 values), --n {DEFAULT_N} (FID-10k: comparable between psi values, higher than FID-50k in absolute terms), --metrics fid,is. That is 100k generated images. Time is about (values x N) / throughput: on a 2-core CPU biggan-deep-128 plus Inception run at about 0.7 s per image (the defaults would take about 20 hours; try --trunc 0.2:1.0:0.4 --n 1000, about 35 minutes); on a GPU use the images/s of `bigganctl bench --device cuda` (typically minutes). See docs/sweep.md.

Examples:

  bigganctl sweep --ref imagenet-128 --out sweep-deep128/

  bigganctl sweep --model biggan-deep-128 --model biggan-128 --trunc 0.2:1.0:0.2 --n 5000 --ref imagenet-128 --out cmp/

  bigganctl sweep --trunc 0.05:0.3:0.05,0.5,1.0 --metrics fid,is,kid --ref val128.npz --out fine/ --json

  bigganctl sweep --trunc 0.2:1.0:0.2 --metrics fid,precision,recall --ref imagenet-128 --out pr/   (precision/recall vs psi)

  bigganctl sweep --weights random --trunc 0.2:1.0:0.4 --n 64 --ref R.npz --inception-weights W.pth --out S/   (smoke test)
"""

GridOpt = Annotated[str, typer.Option(
    "--trunc", "-t", metavar="GRID", rich_help_panel=SAMPLING_PANEL,
    help="psi values: start:stop:step (stop included, decimal-exact), lists 0.2,0.5,1.0 and "
         "combinations (0.05:0.3:0.05,0.5,1.0). DeepMind models: psi in (0, 1].")]
SweepNOpt = Annotated[int, typer.Option(
    *N_FLAGS, metavar="N", rich_help_panel=SAMPLING_PANEL,
    help="Samples per psi (the same seeds S..S+N-1 for every psi). At least 10 with IS (10 splits). "
         "Under torchrun spell it --num-samples (or -n).")]
MetricsOpt = Annotated[str, typer.Option(
    "--metrics", metavar="fid,is,kid,sfid,precision,recall", rich_help_panel=METRIC_PANEL,
    help="Metrics per psi: any of fid, is, kid, sfid, precision, recall (pr: both; or all). All but IS need "
         "--ref; KID and precision/recall need a reference that gives features (see `eval kid --help`), "
         "sFID one with mu_s/sigma_s: with `all` and one that does not, the column stays empty (a note "
         "says why), named it is refused. The plot shows precision and recall against psi.")]
OutDirOpt = Annotated[Path, typer.Option(
    "--out", "-o", metavar="DIR", rich_help_panel=OUTPUT_PANEL,
    help="Folder for sweep.csv, sweep.json, sweep.png, strip.png, manifest.json (and the resume state).")]
StripOpt = Annotated[int, typer.Option(
    "--strip-columns", metavar="K", rich_help_panel=OUTPUT_PANEL,
    help="Samples per row of strip.png (the first K of the evaluation); 0: no strip.")]


def sweep(
    trunc: GridOpt = DEFAULT_GRID,
    n: SweepNOpt = DEFAULT_N,
    ref: RefOpt = None,
    out: OutDirOpt = ...,
    metrics: MetricsOpt = "fid,is",
    model: ModelsOpt = None,
    weights: WeightsOpt = None,
    seed: SeedOpt = 0,
    classes: ClassesOpt = "balanced",
    inception_weights: InceptionWeightsOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "fp32",
    batch_size: BatchSizeOpt = None,
    compile_: CompileOpt = False,
    compile_mode: CompileModeOpt = None,
    strip_columns: StripOpt = DEFAULT_STRIP_COLUMNS,
    resume: ResumeOpt = True,
    checkpoint_every: CheckpointEveryOpt = None,
    force: ForceOpt = False,
    overwrite: OverwriteOpt = False,
    json_: JsonOpt = False,
    summary: SummaryOpt = None,
    quiet: QuietOpt = False,
) -> None:
    from ..api.sweep import parse_psis, sweep as run
    from ..runtime.distributed import is_main
    from ..metrics.evaluation import normalize_metrics

    quiet = quiet or not is_main()              # torchrun: rank 0 prints

    wanted = normalize_metrics(metrics)
    psis = parse_psis(trunc)
    if not quiet:
        note(f"psi: {', '.join(map(str, psis))}  (n={n} each, seeds {seed}-{seed + n - 1})")
    with LiveTable(wanted, quiet) as live:
        doc = run(
            models=model or None, psis=psis, n=n, ref=ref, metrics=metrics, seed=seed, classes=classes,
            weights=weights, out_dir=out, inception_weights=inception_weights, device=device, dtype=dtype,
            batch_size=batch_size, resume=resume, overwrite=overwrite, strip_columns=strip_columns, force=force,
            checkpoint_every=checkpoint_every, on_row=live.on_row, progress=live.reporter(),
            note=lambda m: note(m, quiet=quiet), warn=warn, command=invoked_command(),
            compile=compile_value(compile_, compile_mode))
    if not is_main():
        return
    if json_:
        emit_json(doc)
    elif not quiet:
        note(f"wrote {', '.join(str(out / f) for f in doc['files'].values())}")
    if summary is not None:
        from .. import summary as md

        md.append(summary, md.sweep_section(doc, out, "bigganctl sweep"))


def register(app: typer.Typer) -> None:
    app.command("sweep", help=HELP)(sweep)
