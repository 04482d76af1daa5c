"""What the public operations share: the one model-resolution path (``open_generator``,
``open_for_psi``) and a model's truncation convention before it is loaded
(``model_truncation``)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..runtime.compiling import CompiledGenerator, compiled_generator, resolve_compile
from ..progress import Reporter
from ..weights.registry import get_spec
from ..runtime.device import resolve_device, resolve_dtype
from ..noise import check_psi
from ..types import Compile, Device, Dtype, Model


def open_generator(model: Model, weights: str | None = None, device: Device = "auto", dtype: Dtype = "fp32", *,
                   progress: Reporter | None = None, compile: Compile = None) -> torch.nn.Module:
    """THE model-resolution path of the operations: ``model`` itself if it is a loaded
    generator (``weights``, ``device``, ``dtype`` ignored), else
    :func:`bigganctl.weights.loader.load_generator`; a bad ``device``, ``dtype`` or ``compile``
    fails (exit 2) before anything is read. ``compile`` (a flag or a mode, see
    :func:`bigganctl.runtime.compiling.resolve_compile`): the generator's compiled wrapper."""
    mode = resolve_compile(compile)
    if isinstance(model, (torch.nn.Module, CompiledGenerator)):
        return compiled_generator(model, mode)          # model itself when mode is None
    dev, dt = resolve_device(device), resolve_dtype(dtype)
    from ..weights.loader import load_generator      # looked up at call time (tests stand in for it)

    G = load_generator(model, weights=weights, device=dev, dtype=dt, progress=progress)
    return compiled_generator(G, mode)


def open_for_psi(model: Model, psi: float, weights: str | None = None, device: Device = "auto",
                 dtype: Dtype = "fp32", *, progress: Reporter | None = None,
                 compile: Compile = None) -> tuple[torch.nn.Module, float]:
    """:func:`open_generator`, with ``psi`` checked once against the model's truncation
    convention: before loading when the name tells it (a registered name, a loaded
    generator), else against the generator just loaded (a folder)."""
    convention = model_truncation(model)
    if convention is not None:
        psi = check_psi(psi, convention)
    G = open_generator(model, weights, device, dtype, progress=progress, compile=compile)
    return G, psi if convention is not None else check_psi(psi, G.truncation)


def model_truncation(model: Model) -> str | None:
    """The truncation convention of ``model`` (a Generator, a ModelSpec or a registered
    name), or None when only loading can tell (a folder). Unknown names fail here, before
    any work."""
    if not isinstance(model, (str, os.PathLike)):
        return getattr(model, "truncation", None)
    if Path(model).exists():
        return None
    return get_spec(str(model)).truncation

