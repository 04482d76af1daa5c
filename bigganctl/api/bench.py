"""Throughput measurements for ``bigganctl bench`` and ``benchmarks/`` (no CLI imports).

Generation throughput is measured end to end, as users get images: per-sample seeded
noise -> generator -> uint8 on the CPU (:func:`bigganctl.generate.iter_uint8`), after a
warm-up batch that is not timed.
"""

from __future__ import annotations

import resource
import sys
import time
from typing import Any

import torch

from .generate import default_batch_size, iter_uint8, model_device


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
    bs = batch_size or default_batch_size(device, G.resolution)
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
