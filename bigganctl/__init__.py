"""bigganctl: sampling and evaluation toolkit for BigGAN generators.

The Python API (stable for notebooks and scripts)::

    import bigganctl
    G = bigganctl.load_generator("biggan-deep-128", weights=None, device="auto", dtype="fp32")
    z = bigganctl.truncated_noise(seeds=[0, 1, 2], z_dim=G.z_dim, psi=0.5, convention=G.truncation)
    x = G(z, torch.tensor([207, 207, 1]), 0.5)        # float [3, 3, 128, 128] in [-1, 1]
    res = bigganctl.sample(model="biggan-deep-128", classes=[207, "goldfish"], n=4, seed=0, psi=0.5)
    doc = bigganctl.save_samples(classes="balanced", n=50000, psi=1.0, npz="samples50k.npz")
    metrics = bigganctl.evaluate(model="biggan-deep-128", metrics=("fid", "is"), ref="imagenet-128")

Each operation is one function, the same one its command calls (``bigganctl sample`` ->
``save_samples``, ``eval`` -> ``evaluate``, ``sweep`` -> ``sweep``, ...); every ``progress=``
takes True (tqdm bars), False, ``fn(done, total)`` or a :class:`bigganctl.progress.Reporter`,
and errors name the Python parameter (``psi: ...``).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load_generator": "bigganctl.weights.loader",
    "truncated_noise": "bigganctl.noise",
    "to_uint8": "bigganctl.generate",
    "sample": "bigganctl.api.sample",
    "evaluate": "bigganctl.api.evaluate",
    "sweep": "bigganctl.api.sweep",
    "save_samples": "bigganctl.api.save",
    "compute_stats": "bigganctl.api.stats",
    "resolve_classes": "bigganctl.classes",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'bigganctl' has no attribute {name!r}")
