"""Throughput measurements for ``bigganctl bench`` and ``benchmarks/``.

Generation throughput is measured end to end, as users get images: per-sample seeded
noise -> generator -> uint8 on the CPU (:func:`bigganctl.generate.iter_uint8`), after a
warm-up batch that is not timed.
"""

from __future__ import annotations

import platform
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

from .. import __version__
from ..runtime.compiling import cache_dir, compiled_generator, compiled_module, eager, resolve_compile
from ..generate import batch_size_for, iter_uint8, model_device
from ..progress import ProgressArg, as_reporter
from ..runtime.machine import system_info
from ..runtime.device import dtype_name, resolve_device, resolve_dtype
from ..noise import check_psi
from ._shared import open_generator
from ..types import Compile, Device, Dtype, Generator, Model


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024   # bytes vs KiB


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


#: Untimed batches before the clock starts: CUDA-graph modes run a warm-up call, then
#: record the graph on the next one; only replays are timed.
WARMUP_BATCHES = {None: 1, "default": 1, "reduce-overhead": 3, "max-autotune": 3}


def generation_throughput(G: Generator, *, n: int, batch_size: int | None = None, psi: float = 0.5,
                          compile: Compile = False, seed: int = 0) -> dict[str, Any]:
    """Generate about ``n`` images (random classes, seeds from ``seed``) and time it.

    Whole batches are timed: ``n`` is rounded up to a multiple of the batch size (the
    automatic one on CUDA can be 512; timing one padded batch of 32 would understate the
    rate 16-fold). Returns ``images_per_s``, ``seconds``, ``n`` (images timed),
    ``batch_size``, ``warmup_s`` (the untimed batches, :data:`WARMUP_BATCHES`, including
    compilation with ``compile``: True or a mode), ``compiled`` (the mode or None) and,
    compiled, ``cudagraph_skips`` (graphs inductor declined to capture in this run).
    """
    from ..runtime.compiling import compile_counters

    device = model_device(G)
    bs = batch_size_for(G, batch_size)
    mode = resolve_compile(compile)
    model = compiled_generator(eager(G), mode)
    timed = -(-n // bs) * bs
    warm = WARMUP_BATCHES[mode] * bs
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, G.num_classes, (warm + timed,), generator=gen)
    seeds = list(range(seed, seed + warm + timed))
    skips = compile_counters()["cudagraph_skips"]

    t0 = time.perf_counter()                       # warm-up batches (and compilation)
    for _ in iter_uint8(model, labels[:warm], seeds[:warm], psi, batch_size=bs):
        pass
    _sync(device)
    warmup = time.perf_counter() - t0

    t0 = time.perf_counter()
    for _ in iter_uint8(model, labels[warm:], seeds[warm:], psi, batch_size=bs):
        pass
    _sync(device)
    seconds = time.perf_counter() - t0
    out = {"n": timed, "batch_size": bs, "seconds": seconds, "images_per_s": timed / seconds,
           "warmup_s": warmup, "compiled": mode, "psi": psi}
    if mode is not None:
        out["cudagraph_skips"] = compile_counters()["cudagraph_skips"] - skips
    return out


def feature_throughput(resolution: int, device: torch.device, *, n: int, batch_size: int,
                       compile: str | None = None) -> dict[str, Any]:
    """Images/s of the Inception extractor (random weights: speed does not depend on them)."""
    from ..metrics.features import InceptionFeatures, build_extractor, place, tf32

    net = place(build_extractor(), device)
    run = net if compile is None else compiled_module(net, compile)
    x = torch.randint(0, 256, (batch_size, 3, resolution, resolution), dtype=torch.uint8, device=device)
    with torch.inference_mode(), tf32(InceptionFeatures.allow_tf32):     # as evaluation runs it
        t0 = time.perf_counter()
        for _ in range(WARMUP_BATCHES[compile]):
            run(x)
        _sync(device)
        warmup = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(-(-n // batch_size)):
            run(x)
        _sync(device)
        seconds = time.perf_counter() - t0
    return {"images_per_s": -(-n // batch_size) * batch_size / seconds, "warmup_s": warmup}


def projected_fid50k_s(gen_ips: float, fx_ips: float) -> float:
    """Seconds for FID-50k at these rates (generation and features in turn, as ``eval`` runs)."""
    return 50000 / gen_ips + 50000 / fx_ips


def bench(model: Model = "biggan-deep-128", weights: str | None = "random", device: Device = "auto",
          dtype: Dtype = "fp32", batch_size: int | None = None, n: int = 32, psi: float = 0.5,
          compile: Compile = False, progress: ProgressArg = None,
          note: Callable[[str], None] | None = None, features: bool = True) -> dict[str, Any]:
    """``bigganctl bench``: load time, then :func:`generation_throughput` eager (and compiled
    with ``compile``), the extractor's rate likewise (``features``) and the projected FID-50k
    time; the document ``--json`` prints. ``note`` hears what is about to be timed."""
    dev, dt = resolve_device(device), resolve_dtype(dtype)
    mode = resolve_compile(compile)
    t0 = time.perf_counter()
    G = open_generator(model, weights, dev, dt, progress=as_reporter(progress))
    load_s = time.perf_counter() - t0
    psi = check_psi(psi, G.truncation)
    if note is not None:
        note(f"loaded {G.spec.name} ({G.weights_info['source']} weights) on {dev} in {load_s:.2f}s; "
             f"timing {n} images...")
    res = generation_throughput(G, n=n, batch_size=batch_size, psi=psi)
    runs = {"eager": res}                  # the top level shows the last run (compiled if any)
    if mode is not None:
        if note is not None:
            note(f"compiling ({mode}; cache {cache_dir()}) and timing {n} images...")
        runs["compiled"] = res = generation_throughput(G, n=n, batch_size=batch_size, psi=psi, compile=mode)
    for kind, r in runs.items() if features else ():
        fx = feature_throughput(G.resolution, dev, n=n, batch_size=res["batch_size"],
                                compile=mode if kind == "compiled" else None)
        r["features_per_s"], r["features_warmup_s"] = fx["images_per_s"], fx["warmup_s"]
        r["fid50k_s"] = projected_fid50k_s(r["images_per_s"], fx["images_per_s"])
    return {"model": G.spec.name, "weights": G.weights_info, "device": str(dev), "dtype": dtype_name(dt),
            "threads": torch.get_num_threads(), "load_s": load_s, **res, "runs": runs,
            "fid50k_s": res.get("fid50k_s"), "peak_rss_mb": peak_rss_mb(),
            "torch": torch.__version__, "python": platform.python_version(),
            "machine": platform.machine(), "system": system_info(dev), "version": __version__}
