"""torch.compile for the generator and the feature extractor: the one place it happens.

``compile`` arrives at the edge as a flag or a mode and is resolved once
(:func:`resolve_compile`): ``None`` (eager) or one of :data:`MODES`. Then:

- :func:`compiled_generator` wraps a generator so that its psi-free :meth:`core` runs
  compiled (``G.prepare(psi)`` turns psi into tensors outside the graph, so a sweep over
  psi compiles once). Batches smaller than the largest one seen are padded to it and the
  padding dropped, so the last partial batch reuses the compiled graph instead of
  recompiling (``dynamic=False``: one static shape). The wrapper passes every other
  attribute through to the generator. One wrapper per (generator, mode), held by the
  generator itself: ``del G`` frees the wrapper and its compiled code with it.
- Every wrapper compiles its own code object (:func:`_own_code`): dynamo keeps its cache
  and counts recompiles per code object, so instances, dtypes and modes do not share one
  recompile limit (8) and a long process never falls back to eager silently.
- :func:`compiled_module` does the same for any ``module(x)`` (the Inception extractor).
- :func:`enable_cache` points inductor's on-disk caches (FX graph cache, kernels) at
  ``$BIGGANCTL_HOME/compile`` unless ``TORCHINDUCTOR_CACHE_DIR`` is set, so a second
  process warms up from the first one's work.

Compiled BigGAN-deep runs batched on the CPU too (eager runs the batch-shape-sensitive
kernels one sample at a time); its pixels equal eager's within the uint8 rule of
``docs/development.md`` (at most one level apart in a tiny fraction of the values).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import torch

from ..errors import UsageError
from ..types import Compile, Generator

#: torch.compile modes: ``reduce-overhead`` and ``max-autotune`` use CUDA graphs on GPUs.
MODES = ("default", "reduce-overhead", "max-autotune")
_SET: set[str] = set()     # values of TORCHINDUCTOR_CACHE_DIR set by enable_cache
_OFF = ("", "0", "false", "no", "off", "none", "eager")


def resolve_compile(spec: Compile) -> str | None:
    """``False``/``None``/``"off"`` -> None (eager); ``True`` -> ``"default"``; a mode name
    -> itself. Anything else is a usage error (exit 2)."""
    if spec is None or spec is False:
        return None
    if spec is True:
        return "default"
    s = str(spec).strip().lower()
    if s in _OFF:
        return None
    if s in ("1", "true", "yes", "on"):
        return "default"
    if s not in MODES:
        raise UsageError(f"unknown compile mode {spec!r} ({', '.join(MODES)})", param="compile")
    return s


def cache_dir() -> str:
    """Where inductor keeps compiled artefacts across processes: ``TORCHINDUCTOR_CACHE_DIR``
    when the user set it, else ``$BIGGANCTL_HOME/compile``. (Inductor writes its default,
    a folder under /tmp, into the variable on first use; that one does not count.)"""
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    env = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if env and env not in _SET and os.path.abspath(env) != os.path.abspath(default_cache_dir()):
        return env
    from ..weights.hub import home

    return str(home() / "compile")


def enable_cache() -> str:
    """Use :func:`cache_dir` for inductor's persistent caches; returns it."""
    path = cache_dir()
    _SET.add(path)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = path
    import torch._inductor.config as inductor_config

    inductor_config.fx_graph_cache = True
    return path


#: torch.compile backend; tests use "eager" (dynamo's graph capture without inductor) to
#: check capture and recompiles in seconds.
BACKEND = "inductor"


def _own_code(fn: Any) -> Any:
    """``fn`` behind a function whose code object belongs to this call alone.

    Dynamo attaches its compiled entries (and the recompile limit) to the code object of
    the frame it compiles. ``torch.compile(G.core)`` would share ``core``'s code with every
    other generator of the class (guards on ``self`` by type): two dtypes or eight
    instances would use up one limit. A fresh code object per wrapper keeps them apart and
    lets the entries be freed with the wrapper."""
    def call(*args: Any) -> Any:
        return fn(*args)

    call.__code__ = call.__code__.replace()          # an equal but distinct code object
    return call


def _compile(fn: Any, mode: str) -> Any:
    fn = _own_code(fn)
    enable_cache()
    if not torch.cuda.is_available():    # inductor's C++ build warns about CUDA_HOME on CPUs
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    if BACKEND != "inductor":
        return torch.compile(fn, backend=BACKEND, dynamic=False)
    return torch.compile(fn, mode=None if mode == "default" else mode, dynamic=False)


def _pad(x: torch.Tensor, n: int) -> torch.Tensor:
    """``x`` with zero rows appended up to ``n`` rows."""
    if x.shape[0] == n:
        return x
    return torch.cat([x, x.new_zeros(n - x.shape[0], *x.shape[1:])])


class _Padded:
    """Calls ``fn`` on batches padded to the largest batch seen (one static shape)."""

    def __init__(self, fn: Any, mode: str):
        self.fn = _compile(fn, mode)
        self.mode = mode
        self.rows = 0

    def limit_rows(self, rows: int) -> None:
        """Pad to ``rows`` from now on (after an out-of-memory back-off: one recompile)."""
        self.rows = rows

    def __call__(self, x: torch.Tensor) -> Any:
        return self.run(x)

    def run(self, *batch: torch.Tensor, extra: Any = ()) -> Any:
        n = batch[0].shape[0]
        self.rows = max(self.rows, n)
        out = self.fn(*(_pad(t, self.rows) for t in batch), *extra)
        if isinstance(out, torch.Tensor):
            return out[:n].clone() if self.mode != "default" or n < self.rows else out
        return tuple(o[:n].clone() for o in out)     # CUDA graphs reuse their outputs


class CompiledGenerator:
    """A generator whose forward runs ``torch.compile(G.core)``; see the module docstring.
    Everything else (``spec``, ``z_dim``, ``parameters()``, ``state_dict()``...) is G's."""

    def __init__(self, G: torch.nn.Module, mode: str):
        self.generator = G
        self.compile_mode = mode
        self._padded = _Padded(G.core, mode)

    def __getattr__(self, name: str) -> Any:
        if "generator" not in self.__dict__:         # during copy/unpickling
            raise AttributeError(name)
        return getattr(self.__dict__["generator"], name)

    def limit_rows(self, rows: int) -> None:
        """Pad to ``rows`` from now on (after an out-of-memory back-off: one recompile)."""
        self._padded.limit_rows(rows)

    def __call__(self, z: torch.Tensor, y: torch.Tensor, psi: float = 1.0) -> torch.Tensor:
        G = self.generator
        z, yv, psi = G.inputs(z, y, psi)
        return self._padded.run(z, yv, extra=(G.prepare(psi),)).float()

    forward = __call__


class _Wrappers(dict):
    """G's compiled wrappers by mode, kept in G's ``__dict__`` (a reference cycle the garbage
    collector frees with G; a global weak-key map whose values hold their keys never
    would). Copies and pickles of G start without any."""

    def __deepcopy__(self, memo: dict) -> _Wrappers:
        return _Wrappers()

    def __reduce__(self) -> tuple:
        return (_Wrappers, ())


_ATTR = "_bigganctl_compiled"


def compiled_generator(G: Generator, mode: str | None) -> Any:
    """``G`` itself when ``mode`` is None, else G's one compiled wrapper for ``mode``."""
    if mode is None:
        return G
    if isinstance(G, CompiledGenerator):
        G = G.generator
    per = G.__dict__.get(_ATTR)
    if per is None:
        per = G.__dict__[_ATTR] = _Wrappers()
    if mode not in per:
        per[mode] = CompiledGenerator(G, mode)
    return per[mode]


def eager(G: Generator) -> torch.nn.Module:
    """The plain module behind a possibly compiled generator."""
    return G.generator if isinstance(G, CompiledGenerator) else G


def compiled_module(net: torch.nn.Module, mode: str) -> _Padded:
    """``net(x)`` compiled, with batches padded to the largest seen (no recompiles); the
    result has ``limit_rows`` for the out-of-memory back-off."""
    return _Padded(net, mode)


def compile_counters() -> dict[str, int]:
    """Dynamo / inductor counters of this process: graphs, recompiles, graph breaks, frames
    that hit the recompile limit (they run eager) and CUDA graphs inductor skipped
    (``reduce-overhead`` then runs without them)."""
    from torch._dynamo.utils import counters

    def total(group: str) -> int:
        return int(sum(counters[group].values())) if group in counters else 0

    unimpl = counters["unimplemented"] if "unimplemented" in counters else {}
    return {"unique_graphs": int(counters["stats"]["unique_graphs"]) if "stats" in counters else 0,
            "recompiles": total("recompiles"), "graph_breaks": total("graph_break"),
            "recompile_limit_hits": int(sum(v for k, v in unimpl.items() if "limit" in str(k).lower())),
            "cudagraph_skips": int(counters["inductor"]["cudagraph_skips"]) if "inductor" in counters else 0}
