"""What every public operation shares: the one model-resolution path and progress bars.

Progress: the core reports through a :class:`~bigganctl.progress.Reporter`; here the
public ``progress`` arguments become one: ``True`` draws ``tqdm.auto`` bars on stderr (so
notebooks get widgets), a reporter (the CLI's rich bars) is used as it is, a callable
``fn(done, total)`` is called, ``False`` is silent.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..compiling import CompiledGenerator, compiled_generator, resolve_compile
from ..progress import ProgressArg, Reporter, Step, from_callback, is_reporter, reporter as mark_reporter
from ..registry import get_spec
from ..runtime import resolve_device, resolve_dtype
from ..types import Compile, Device, Dtype, Model


def tqdm_reporter(*, leave: bool = False) -> Reporter:
    """Bars on stderr (``tqdm.auto``: widgets in notebooks)."""

    @mark_reporter
    @contextlib.contextmanager
    def report(label: str, *, total: int | None, initial: int = 0, unit: str = "it") -> Iterator[Step]:
        byte = unit == "B"
        with tqdm(total=total, initial=initial, unit=unit, desc=label, file=sys.stderr, leave=leave,
                  dynamic_ncols=True, unit_scale=byte, unit_divisor=1024 if byte else 1000,
                  smoothing=0.05) as bar:
            yield lambda done: bar.update(done - bar.n)

    return report


def reporter(progress: ProgressArg) -> Reporter | None:
    """THE reading of a public ``progress`` argument: True -> tqdm bars, a reporter (the
    CLI's rich bars) -> itself, a callable ``fn(done, total)`` -> called, False/None ->
    silent."""
    if progress is True:
        return tqdm_reporter()
    if is_reporter(progress):
        return progress
    if callable(progress):
        return from_callback(progress)
    return None


def open_generator(model: Model, weights: str | None = None, device: Device = "auto", dtype: Dtype = "fp32", *,
                   progress: Reporter | None = None, compile: Compile = None) -> torch.nn.Module:
    """THE model-resolution path of the operations: ``model`` itself if it is a loaded
    generator (``weights``, ``device``, ``dtype`` ignored), else
    :func:`bigganctl.loader.load_generator`; a bad ``device``, ``dtype`` or ``compile``
    fails (exit 2) before anything is read. ``compile`` (a flag or a mode, see
    :func:`bigganctl.compiling.resolve_compile`): the generator's compiled wrapper."""
    mode = resolve_compile(compile)
    if isinstance(model, (torch.nn.Module, CompiledGenerator)):
        return compiled_generator(model, mode)          # model itself when mode is None
    dev, dt = resolve_device(device), resolve_dtype(dtype)
    from ..loader import load_generator      # looked up at call time (tests stand in for it)

    G = load_generator(model, weights=weights, device=dev, dtype=dt, progress=progress)
    return compiled_generator(G, mode)


def model_truncation(model: Model) -> str | None:
    """The truncation convention of ``model`` (a Generator, a ModelSpec or a registered
    name), or None when only loading can tell (a folder). Unknown names fail here, before
    any work."""
    if not isinstance(model, (str, os.PathLike)):
        return getattr(model, "truncation", None)
    if Path(model).exists():
        return None
    return get_spec(str(model)).truncation


def load_generator(model: Model = "biggan-deep-128", weights: str | os.PathLike | None = None,
                   device: str | torch.device = "auto", dtype: str | torch.dtype = "fp32", *,
                   progress: bool = True) -> torch.nn.Module:
    """``bigganctl.load_generator``: :func:`bigganctl.loader.load_generator` with download
    bars (``tqdm.auto``) unless ``progress=False``."""
    from ..loader import load_generator as load

    return load(model, weights=weights, device=device, dtype=dtype, progress=reporter(progress))
