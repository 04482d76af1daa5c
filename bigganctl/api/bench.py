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

from ..generate import batch_size_for, iter_uint8, model_device
from ..progress import Reporter
from ..runtime import dtype_name, resolve_device, resolve_dtype
from ..sampling import check_psi
from .common import open_generator


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024   # bytes vs KiB


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def generation_throughput(G: Any, *, n: int, batch_size: int | None = None, psi: float = 0.5,
                          compile: bool = False, seed: int = 0) -> dict[str, Any]:
    """Generate ``n`` images (random classes, seeds ``seed..seed+n-1``) and time it.

    Returns ``images_per_s``, ``seconds``, ``n``, ``batch_size``, ``warmup_s`` (first batch,
    including compilation with ``compile``) and ``compiled``.
    """
    device = model_device(G)
    bs = batch_size_for(G, batch_size)
    model = torch.compile(G) if compile else G
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, G.num_classes, (n + bs,), generator=gen)
    seeds = list(range(seed, seed + n + bs))

    t0 = time.perf_counter()                       # warm-up batch (and compilation)
    for _ in iter_uint8(model, labels[:bs], seeds[:bs], psi, batch_size=bs):
        pass
    _sync(device)
    warmup = time.perf_counter() - t0

    t0 = time.perf_counter()
    for _ in iter_uint8(model, labels[bs:], seeds[bs:], psi, batch_size=bs):
        pass
    _sync(device)
    seconds = time.perf_counter() - t0
    return {"n": n, "batch_size": bs, "seconds": seconds, "images_per_s": n / seconds,
            "warmup_s": warmup, "compiled": compile, "psi": psi}


def bench(model: Any = "biggan-deep-128", weights: str | None = "random", device: Any = "auto",
          dtype: Any = "fp32", batch_size: int | None = None, n: int = 32, psi: float = 0.5,
          compile: bool = False, progress: Reporter | None = None,
          note: Callable[[str], None] | None = None) -> dict[str, Any]:
    """``bigganctl bench``: load time, then :func:`generation_throughput`; the document
    ``--json`` prints. ``note`` hears what is about to be timed."""
    dev, dt = resolve_device(device), resolve_dtype(dtype)
    t0 = time.perf_counter()
    G = open_generator(model, weights, dev, dt, progress=progress)
    load_s = time.perf_counter() - t0
    psi = check_psi(psi, G.truncation)
    if note is not None:
        note(f"loaded {G.spec.name} ({G.weights_info['source']} weights) on {dev} in {load_s:.2f}s; "
             f"timing {n} images...")
    res = generation_throughput(G, n=n, batch_size=batch_size, psi=psi, compile=compile)
    return {"model": G.spec.name, "weights": G.weights_info, "device": str(dev), "dtype": dtype_name(dt),
            "threads": torch.get_num_threads(), "load_s": load_s, **res, "peak_rss_mb": peak_rss_mb(),
            "torch": torch.__version__, "python": platform.python_version(),
            "machine": platform.machine()}
