"""``bigganctl bench``: generation throughput on this machine."""

from __future__ import annotations

import platform
import time
from typing import Annotated

import typer

from .options import (DEFAULT_MODEL, BatchSizeOpt, DeviceOpt, DtypeOpt, JsonOpt, ModelOpt, QuietOpt,
                      WeightsOpt)
from .render import emit_json, note


def bench(
    model: ModelOpt = DEFAULT_MODEL,
    weights: WeightsOpt = "random",
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "fp32",
    batch_size: BatchSizeOpt = None,
    n: Annotated[int, typer.Option("--n", min=1, metavar="N",
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
    import torch

    from ..benchmark import generation_throughput, peak_rss_mb
    from ..loader import load_generator
    from ..runtime import dtype_name, resolve_device, resolve_dtype
    from ..sampling import check_psi

    dev, dt = resolve_device(device), resolve_dtype(dtype)
    t0 = time.perf_counter()
    G = load_generator(model, weights=weights, device=dev, dtype=dt, progress=not quiet)
    load_s = time.perf_counter() - t0
    psi = check_psi(trunc, G.truncation)
    note(f"loaded {G.spec.name} ({G.weights_info['source']} weights) on {dev} in {load_s:.2f}s; "
         f"timing {n} images...", quiet=quiet)
    res = generation_throughput(G, n=n, batch_size=batch_size, psi=psi, compile=compile_)
    doc = {"model": G.spec.name, "weights": G.weights_info, "device": str(dev), "dtype": dtype_name(dt),
           "threads": torch.get_num_threads(), "load_s": load_s, **res, "peak_rss_mb": peak_rss_mb(),
           "torch": torch.__version__, "python": platform.python_version(),
           "machine": platform.machine()}
    if json_:
        emit_json(doc)
        return
    typer.echo(f"{doc['model']}  {doc['device']} {doc['dtype']}  batch {doc['batch_size']}"
               f"{'  compiled' if compile_ else ''}\n"
               f"  load        {load_s:8.2f} s\n"
               f"  warm-up     {res['warmup_s']:8.2f} s\n"
               f"  generation  {res['images_per_s']:8.2f} images/s  ({n} images in {res['seconds']:.2f} s)\n"
               f"  peak RSS    {doc['peak_rss_mb']:8.0f} MiB")


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
