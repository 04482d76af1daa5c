"""``bigganctl bench``: generation throughput on this machine."""

from __future__ import annotations

from typing import Annotated

import typer

from .options import (DEFAULT_MODEL, N_FLAGS, BatchSizeOpt, CompileModeOpt, CompileOpt, DeviceOpt, DtypeOpt,
                      JsonOpt, ModelOpt, QuietOpt, WeightsOpt, compile_value)
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
    json_: JsonOpt = False,
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
    """
    from ..api.bench import bench as measure

    doc = measure(model, weights, device, dtype, batch_size=batch_size, n=n, psi=trunc,
                  compile=compile_value(compile_, compile_mode), features=features,
                  progress=rich_reporter(quiet=quiet), note=lambda m: note(m, quiet=quiet))
    if json_:
        emit_json(doc)
        return
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
    typer.echo("\n".join(lines))


def _duration(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else (f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h")


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
