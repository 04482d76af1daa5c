"""``bigganctl bench``: generation throughput on this machine."""

from __future__ import annotations

from typing import Annotated

import typer

from .options import (DEFAULT_MODEL, N_FLAGS, BatchSizeOpt, DeviceOpt, DtypeOpt, JsonOpt, ModelOpt, QuietOpt,
                      WeightsOpt)
from .render import emit_json, note, rich_reporter


def bench(
    model: ModelOpt = DEFAULT_MODEL,
    weights: WeightsOpt = "random",
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "fp32",
    batch_size: BatchSizeOpt = None,
    n: Annotated[int, typer.Option(*N_FLAGS, min=1, metavar="N",
                                   help="Images to time (after one untimed warm-up batch).")] = 32,
    trunc: Annotated[float, typer.Option("--trunc", "-t", metavar="PSI",
                                         help="Truncation psi used while timing.")] = 0.5,
    compile_: Annotated[bool, typer.Option("--compile", help="Run the generator through torch.compile "
                                           "(compilation time is reported as warm-up).")] = False,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Measure model load time and generation throughput (images/s) on this machine.

    Uses random weights by default (`--weights random`, no download needed; speed depends
    on the architecture, not on the weight values); `--weights PATH` times a given
    checkpoint, including its load time. Timing covers noise, generator and the uint8
    conversion, after an untimed warm-up batch. For a side-by-side comparison with
    pytorch-pretrained-biggan run `benchmarks/bench_generate.py`.

    Examples:

      bigganctl bench

      bigganctl bench --model biggan-deep-256 --n 64 --batch-size 16 --device cuda --dtype bf16

      bigganctl bench --compile --json
    """
    from ..api.bench import bench as measure

    doc = measure(model, weights, device, dtype, batch_size=batch_size, n=n, psi=trunc, compile=compile_,
                  progress=rich_reporter(quiet=quiet), note=lambda m: note(m, quiet=quiet))
    load_s = doc["load_s"]
    if json_:
        emit_json(doc)
        return
    typer.echo(f"{doc['model']}  {doc['device']} {doc['dtype']}  batch {doc['batch_size']}"
               f"{'  compiled' if compile_ else ''}\n"
               f"  load        {load_s:8.2f} s\n"
               f"  warm-up     {doc['warmup_s']:8.2f} s\n"
               f"  generation  {doc['images_per_s']:8.2f} images/s  ({n} images in {doc['seconds']:.2f} s)\n"
               f"  peak RSS    {doc['peak_rss_mb']:8.0f} MiB")


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
