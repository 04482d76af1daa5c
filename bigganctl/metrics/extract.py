"""Streaming feature extraction: sources -> Inception -> constant-memory accumulators.

Features go into streaming accumulators (:mod:`.maths`): pool_3 for FID, ``mixed_6/conv``
for sFID, logits for IS; only KID and precision/recall keep the [N, 2048] pool_3 features. Long runs save their accumulators to ``$BIGGANCTL_HOME/runs/eval-<key>.pt`` (key:
every knob that changes the accumulated numbers) every few minutes and on Ctrl-C
(:class:`Checkpointer`); the same run resumes there and ends with the same numbers as an
uninterrupted one. Under ``torchrun`` each process extracts its contiguous share of the
samples and the accumulators are all-reduced (features gathered in sample order for KID and
precision/recall).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Callable

import numpy as np
import torch

from ..weights import hub
from ..integrity import IntegrityError, describe_failure, load_sealed_torch, save_sealed_torch
from ..runtime.distributed import Dist, collective, comm_device, gather_rows
from ..progress import Reporter, task
from . import maths as S
from .features import FEATURE_DIM, NUM_LOGITS, SPATIAL_DIM, InceptionFeatures

CHECKPOINT_SECONDS = 300.0
CHECKPOINT_VERSION = 3          # 2: sealed with a sha256 trailer (bigganctl.integrity); 3: + sFID's sums


def _stderr_warning(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr)


# ----------------------------------------------------------------------------- accumulation

@dataclass
class Accumulators:
    """Everything a run accumulates; ``done`` = samples of this shard already processed."""

    fid: S.FIDAccumulator | None
    isc: S.ISAccumulator | None
    keep_features: bool
    feats: list[torch.Tensor] = field(default_factory=list)
    done: int = 0
    sfid: S.FIDAccumulator | None = None

    def features(self) -> np.ndarray:
        if not self.feats:
            return np.zeros((0, FEATURE_DIM), np.float32)
        return torch.cat(self.feats).numpy()

    def state_dict(self) -> dict:
        return {"done": self.done,
                "fid": None if self.fid is None else self.fid.state_dict(),
                "isc": None if self.isc is None else self.isc.state_dict(),
                "sfid": None if self.sfid is None else self.sfid.state_dict(),
                "features": torch.cat(self.feats) if self.feats else None}

    def load_state_dict(self, st: dict) -> None:
        self.done = int(st["done"])
        if self.fid is not None:
            self.fid.load_state_dict(st["fid"])
        if self.isc is not None:
            self.isc.load_state_dict(st["isc"])
        if self.sfid is not None:
            self.sfid.load_state_dict(st["sfid"])
        self.feats = [st["features"]] if st.get("features") is not None else []


def new_accumulators(*, n_total: int, need_fid: bool, is_splits: int | None, keep_features: bool,
                     device: torch.device, is_shuffle: bool = True, need_sfid: bool = False,
                     is_block: int | None = None) -> Accumulators:
    """``is_block``: ADM's IS rule (consecutive splits of that many samples; ``is_splits`` is
    then only a flag)."""
    dev = torch.device("cpu") if device.type == "mps" else device    # no float64 on MPS
    return Accumulators(
        fid=S.FIDAccumulator(FEATURE_DIM, dev) if need_fid else None,
        isc=S.ISAccumulator(n_total, NUM_LOGITS, is_splits, shuffle=is_shuffle, device=dev, block=is_block)
        if is_splits else None,
        keep_features=keep_features,
        sfid=S.FIDAccumulator(SPATIAL_DIM, dev) if need_sfid else None)


class Checkpointer:
    """Saves accumulators atomically every ``every`` samples or ``seconds``; resumes them.

    The file is sealed with a sha256 of its content (:mod:`bigganctl.integrity`): a damaged
    or altered checkpoint is reported once (``warn``), removed, and the run starts afresh.
    A save that fails (read-only or full home) is reported once; the run goes on without
    checkpoints, so only resumability is lost.
    """

    def __init__(self, path: Path, key: dict, *, every: int | None = None, seconds: float = CHECKPOINT_SECONDS,
                 warn: Callable[[str], None] | None = None):
        self.path, self.key, self.every, self.seconds = path, key, every, seconds
        self.warn = warn or _stderr_warning
        self._last_done = 0
        self._last_time = time.monotonic()
        self._failed = False

    def load(self) -> dict | None:
        if not self.path.is_file():
            return None
        try:
            st = load_sealed_torch(self.path)
        except (IntegrityError, OSError) as e:
            self.warn(f"checkpoint {self.path} not used: {e}; starting afresh")
            self.remove()
            return None
        return st if isinstance(st, dict) and st.get("key") == self.key else None

    def maybe_save(self, acc: Accumulators) -> None:
        due = (self.every is not None and acc.done - self._last_done >= self.every) or (
            time.monotonic() - self._last_time >= self.seconds)
        if due:
            self.save(acc)

    def save(self, acc: Accumulators) -> None:
        if self._failed or (acc.done == self._last_done and self.path.is_file()):
            return
        try:
            save_sealed_torch({"key": self.key, **acc.state_dict()}, self.path)
        except Exception as e:                # a checkpoint is a convenience, never a failure
            self._failed = True
            self.warn(f"cannot save the checkpoint {self.path} ({describe_failure(e)}); the run goes on, "
                      "but cannot be resumed if stopped")
            return
        self._last_done, self._last_time = acc.done, time.monotonic()

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()


def checkpoint_path(key: dict, kind: str = "eval") -> Path:
    """``$BIGGANCTL_HOME/runs/<kind>-<digest of key>.pt``."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:24]
    return hub.home() / "runs" / f"{kind}-{digest}.pt"


@functools.lru_cache(maxsize=1)
def _malloc_trim() -> Callable[[], Any] | None:
    """glibc's ``malloc_trim(0)``, or None elsewhere.

    CPU inference frees and re-allocates the same large activation buffers every batch;
    glibc keeps much of that in its heaps, and the process's resident memory creeps up with
    the number of batches. Trimming after each batch keeps peak memory independent of N.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        fn = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
    return lambda: fn(0)


def extract(src, fx: InceptionFeatures, *, n: int, keep_features: bool, is_splits: int | None,
            batch_size: int, need_fid: bool = True, progress: Reporter | None = None, desc: str = "eval",
            shard: tuple[int, int] | None = None, acc: Accumulators | None = None,
            checkpointer: Checkpointer | None = None) -> Accumulators:
    """Run samples ``shard[0]..shard[1]-1`` of ``src`` through the extractor into accumulators;
    ``progress`` hears ``done`` (samples of this shard) after every batch."""
    lo, hi = shard or (0, n)
    if acc is None:
        acc = new_accumulators(n_total=n, need_fid=need_fid, is_splits=is_splits, keep_features=keep_features,
                               device=fx.device)
    trim = _malloc_trim()
    with task(progress, desc, total=hi - lo, initial=acc.done, unit="img") as step:
        try:
            for off, x in src.batches(lo + acc.done, hi, batch_size):
                b = x.shape[0]
                if acc.sfid is not None:
                    feats, logits, spatial = fx.with_spatial(x)
                    acc.sfid.update(spatial)
                    del spatial
                else:
                    feats, logits = fx(x)
                if acc.fid is not None:
                    acc.fid.update(feats)
                if acc.isc is not None:
                    acc.isc.update(logits, off)
                if acc.keep_features:
                    acc.feats.append(feats.cpu())
                acc.done = off + b - lo
                del x, feats, logits
                if trim is not None and (fx.device.type == "cpu" or (off // batch_size) % 64 == 63):
                    trim()                    # ~5 ms: every batch on CPU, now and then on accelerators
                if checkpointer is not None:
                    checkpointer.maybe_save(acc)
                step(acc.done)
        except KeyboardInterrupt:
            if checkpointer is not None:
                checkpointer.save(acc)
            raise
    return acc


def extract_resumable(src, fx: InceptionFeatures, *, key: dict, kind: str, n: int, shard: tuple[int, int],
                      dist: Dist, device: torch.device, resume: bool, need_fid: bool, is_splits: int | None,
                      keep_features: bool, is_shuffle: bool = True, need_sfid: bool = False,
                      is_block: int | None = None, batch_size: int, every: int | None = None,
                      progress: Reporter | None = None, desc: str = "eval",
                      note: Callable[[str], None] | None = None,
                      warn: Callable[[str], None] | None = None) -> tuple[Accumulators, Checkpointer, int]:
    """:func:`extract` of this process's ``shard``, resumable: with ``resume`` the checkpoint of
    ``key`` is loaded (otherwise a stale one is removed); under torchrun the finished shard is
    saved before the all-reduce (another process may still fail), then :func:`reduce`.
    ``note`` hears where a resumed run resumes, ``warn`` a damaged checkpoint or a failed save
    (default: stderr). Returns the job's accumulators, the checkpointer (the caller removes it once its result
    is written) and how many of this shard's samples came from the checkpoint."""
    ckpt = Checkpointer(checkpoint_path(key, kind), key, every=every, warn=warn)
    acc = new_accumulators(n_total=n, need_fid=need_fid, is_splits=is_splits, keep_features=keep_features,
                           device=fx.device, is_shuffle=is_shuffle, need_sfid=need_sfid, is_block=is_block)
    st = ckpt.load() if resume else None
    if st is not None:
        acc.load_state_dict(st)
        if note is not None:
            note(f"resuming from {ckpt.path} ({acc.done}/{shard[1] - shard[0]} samples done)")
    elif not resume:
        ckpt.remove()
    resumed_from = acc.done
    extract(src, fx, n=n, keep_features=keep_features, is_splits=is_splits, need_fid=need_fid,
            batch_size=batch_size, progress=progress, desc=desc, shard=shard, acc=acc, checkpointer=ckpt)
    if dist.active:
        ckpt.save(acc)
    reduce(acc, dist, n, device)
    return acc, ckpt, resumed_from


# ----------------------------------------------------------------------------- distributed

def reduce(acc: Accumulators, d: Dist, n: int, device: torch.device) -> None:
    """All-reduce the float64 accumulators of every rank; gather the kept features (KID,
    precision/recall) in sample order."""
    if not d.active:
        return
    comm = comm_device(device)
    with collective("the all-reduce of the statistics"):
        for a in (acc.fid, acc.isc, acc.sfid):
            if a is None:
                continue
            moved = {k: getattr(a, k) for k in vars(a) if isinstance(getattr(a, k), torch.Tensor)
                     and getattr(a, k).dtype == torch.float64}
            for k, t in moved.items():
                setattr(a, k, t.to(comm))
            a.all_reduce()
            for k, t in moved.items():
                setattr(a, k, getattr(a, k).to(t.device))
    if acc.keep_features:
        local = torch.cat(acc.feats) if acc.feats else torch.zeros(0, FEATURE_DIM)
        acc.feats = [gather_rows(local, n, d, device, to_all=True, what="the gather of the features")]
