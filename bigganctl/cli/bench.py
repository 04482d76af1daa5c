"""``bigganctl bench``: generation throughput on this machine."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from .options import (DEFAULT_MODEL, N_FLAGS, BatchSizeOpt, CompileModeOpt, CompileOpt, DeviceOpt, DtypeOpt,
                      JsonOpt, ModelOpt, QuietOpt, SummaryOpt, WeightsOpt, compile_value)
from .render import emit_json, note, rich_reporter


def bench(
    model: ModelOpt = DEFAULT_MODEL,
    weights: WeightsOpt = "random",
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "fp32",
    batch_size: BatchSizeOpt = None,
    n: Annotated[int, typer.Option(*N_FLAGS, min=1, metavar="N",
                                   help="Images to time, rounded up to whole batches (after an untimed warm-up).")] = 32,
    trunc: Annotated[float, typer.Option("--trunc", "-t", metavar="PSI",
                                         help="Truncation psi used while timing.")] = 0.5,
    compile_: CompileOpt = False,
    compile_mode: CompileModeOpt = None,
    features: Annotated[bool, typer.Option("--features/--no-features",
                                           help="Also time the Inception extractor (random weights) and "
                                                "project the FID-50k time.")] = True,
    min_images_per_s: Annotated[Optional[float], typer.Option(
        "--min-images-per-s", metavar="X", min=0,
        help="Throughput gate: exit 3 (after printing the result) if generation runs below X images/s "
             "(the compiled run with --compile).")] = None,
    json_: JsonOpt = False,
    summary: SummaryOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Measure model load time and generation throughput (images/s) on this machine.

    Uses random weights by default (`--weights random`, no download needed; speed depends
    on the architecture, not on the weight values); `--weights PATH` times a given
    checkpoint, including its load time. Timing covers noise, generator and the uint8
    conversion, after an untimed warm-up batch (three with the CUDA-graph compile modes),
    in whole batches: `--n` is rounded up to a multiple of the batch size. For a side-by-side comparison with
    pytorch-pretrained-biggan run `benchmarks/bench_generate.py`.

    Examples:

      bigganctl bench

      bigganctl bench --model biggan-deep-256 --n 64 --batch-size 16 --device cuda --dtype bf16

      bigganctl bench --compile --json

      bigganctl bench --weights random --n 16 --min-images-per-s 0.5 --summary summary.md

    Exit codes: 0 ok; 1 runtime failure; 2 bad input; 3 --min-images-per-s missed (the result is still printed).
    The JSON records the machine under `system` (CPU model, ISA, threads, device name, torch), so
    `bigganctl compare` refuses to compare runs of different machines (docs/ci.md).
    """
    from ..api.bench import bench as measure

    doc = measure(model, weights, device, dtype, batch_size=batch_size, n=n, psi=trunc,
                  compile=compile_value(compile_, compile_mode), features=features,
                  progress=rich_reporter(quiet=quiet), note=lambda m: note(m, quiet=quiet))
    gates = [] if min_images_per_s is None else [
        (f"{doc['images_per_s']:.2f} images/s ≥ --min-images-per-s {min_images_per_s:g}",
         bool(doc["images_per_s"] >= min_images_per_s))]
    if json_:
        emit_json(doc)
    else:
        _render(doc, n, features)
    if summary is not None:
        from .. import summary as md

        md.append(summary, md.bench_section(doc, gates, "bigganctl bench"))
    if not all(ok for _, ok in gates):
        from ..errors import GateFailed

        raise GateFailed(f"throughput gate missed: {doc['images_per_s']:.2f} images/s < --min-images-per-s "
                         f"{min_images_per_s:g}")


def _render(doc: dict, n: int, features: bool) -> None:
    runs = doc["runs"]
    lines = [f"{doc['model']}  {doc['device']} {doc['dtype']}  batch {doc['batch_size']}  {doc['n']} images",
             f"  load        {doc['load_s']:8.2f} s",
             f"  {'':10}{'images/s':>10}{'warm-up s':>11}" + (f"{'features/s':>12}{'FID-50k':>10}" if features else "")]
    for kind, r in runs.items():
        row = f"  {kind:10}{r['images_per_s']:10.2f}{r['warmup_s']:11.2f}"
        if features:
            row += f"{r['features_per_s']:12.2f}{_duration(r['fid50k_s']):>10}"
        lines.append(row)
    if "compiled" in runs:
        lines.append(f"  compiled / eager: {runs['compiled']['images_per_s'] / runs['eager']['images_per_s']:.2f}x")
    lines.append(f"  peak RSS    {doc['peak_rss_mb']:8.0f} MiB")
    system = doc.get("system") or {}
    lines.append(f"  machine     {system.get('device_name')} ({system.get('isa')}), {doc['threads']} threads, "
                 f"torch {doc['torch']}")
    typer.echo("\n".join(lines))


def _duration(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else (f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h")


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
