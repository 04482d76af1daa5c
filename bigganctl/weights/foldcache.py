"""The load cache: a checkpoint's folded state dict, kept as safetensors for the next load.

Reading a checkpoint means unpickling it and folding spectral norm into plain weights (a
power iteration per layer, :mod:`bigganctl.weights.formats`). The result depends only on the
file's bytes and on the code that folds, so it is written once to::

    <home>/folded/<source sha256>-<code key>.safetensors     the folded state dict
    <home>/folded/<source sha256>-<code key>.sha256          its sha256

where the code key hashes :data:`FOLD_VERSION`, bigganctl's version, the architecture,
the format and the config. Later loads check the file against its recorded sha256 and read
it memory-mapped (``safetensors``); a file that fails the check (truncated, bit flips, a
missing record) is deleted and rebuilt from the checkpoint. Failing to write the cache
(read-only home, full disk) only costs the next load its speed. ``BIGGANCTL_LOAD_CACHE=0``
turns the cache off.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .. import __version__
from .._io import atomic_path, sha256_file
from ..integrity import describe_failure
from .hub import cached_sha256, home
from .registry import ModelSpec

#: Bump when the folded state of an unchanged checkpoint changes (weights/formats/ or models/).
FOLD_VERSION = 1


def enabled() -> bool:
    return os.environ.get("BIGGANCTL_LOAD_CACHE", "1").strip().lower() not in ("0", "false", "no", "off")


def cache_path(spec: ModelSpec, source_sha256: str) -> Path:
    """Where the folded state of this checkpoint (sha256) for this spec's code lives."""
    code = f"{FOLD_VERSION}|{__version__}|{spec.arch}|{spec.format}|{spec.config!r}"
    key = hashlib.sha256(code.encode()).hexdigest()[:16]
    return home() / "folded" / f"{source_sha256}-{key}.safetensors"


def _record(path: Path) -> Path:
    return path.with_suffix(".sha256")


def read_cached(path: Path) -> dict[str, torch.Tensor] | None:
    """The cached state dict, or None (missing, or corrupted: then removed)."""
    record = _record(path)
    if not path.is_file():
        return None
    try:
        expected = record.read_text().strip()
        if sha256_file(path) != expected:
            raise ValueError("sha256 mismatch")
        from safetensors.torch import load_file

        return load_file(str(path))                 # memory-mapped
    except Exception:                               # missing record, mismatch, unreadable
        for p in (path, record):
            with contextlib.suppress(OSError):
                p.unlink()
        return None


def write_cached(path: Path, state: dict[str, torch.Tensor]) -> None:
    """Write ``state`` and its sha256 record, atomically; failures are ignored (a cache)."""
    from safetensors.torch import save_file

    try:
        with atomic_path(path) as tmp:
            save_file({k: v.detach().contiguous() for k, v in state.items()}, str(tmp),
                      metadata={"bigganctl": __version__, "fold_version": str(FOLD_VERSION)})
            digest = sha256_file(tmp)
        with atomic_path(_record(path)) as tmp:
            tmp.write_text(digest + "\n")
    except Exception as e:                  # ENOSPC, EROFS, SafetensorError...: costs only speed
        _warn_once(f"cannot keep the folded weights in {path.parent} ({describe_failure(e)}); loading "
                   "goes on without the cache (BIGGANCTL_LOAD_CACHE=0 turns it off)")


_warned: set[str] = set()


def _warn_once(msg: str) -> None:
    if "write" not in _warned:
        _warned.add("write")
        print(f"warning: {msg}", file=sys.stderr)


def load(spec: ModelSpec, wfile: Path, read: Callable[[], tuple[Any, dict[str, torch.Tensor]]]
         ) -> tuple[Any, dict[str, torch.Tensor]]:
    """``read()`` (-> config or None, folded state dict), through the cache. Only states
    whose config is the spec's (or None) are cached; a hit returns ``spec.config``."""
    if not enabled():
        return read()
    path = cache_path(spec, cached_sha256(wfile))
    state = read_cached(path)
    if state is not None:
        return spec.config, state
    config, state = read()
    if config is None or config == spec.config:
        write_cached(path, state)
    return config, state
