"""The evaluation driver: samples -> Inception features -> FID / IS / KID.

::

    res = bigganctl.evaluate(model="biggan-deep-128", metrics=("fid", "is"), n=50000,
                             psi=1.0, ref="imagenet-128")
    res["fid"], res["is_mean"]

Sources: a generator (a registered name or folder loaded with ``bigganctl.loader``, or a
``Generator`` instance), an image folder or an ``.npz`` batch (``images=``). Generated
sample ``i`` uses noise seed ``seed + i`` and the ``i``-th class of the class plan
(``balanced``: class ``i mod C``, so every prefix is as balanced as it can be), so the
numbers never depend on the batch size or the number of processes.

Features stream through constant-memory accumulators (``.stats``); only KID keeps the
[N, 2048] features. Long runs save their accumulators to
``$BIGGANCTL_HOME/runs/eval-<key>.pt`` (key: every knob that changes the accumulated
numbers) every few minutes and on Ctrl-C; the same call resumes there and ends with the
same numbers as an uninterrupted run. Under ``torchrun`` each process evaluates its
contiguous share of the samples and the accumulators are all-reduced (features gathered
in sample order for KID); every process returns the result.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch

from .. import __version__
from ..errors import GateFailed, UsageError
from . import stats as S
from .features import EXTRACTOR, FEATURE_DIM, NUM_LOGITS, InceptionFeatures

METRICS = ("fid", "is", "kid")
DEFAULT_N = 50_000
CHECKPOINT_SECONDS = 300.0
CHECKPOINT_VERSION = 1

Progress = Callable[[int, int], None]


# ----------------------------------------------------------------------------- sources

class GeneratorSource:
    """Generated samples as uint8 batches: sample ``i`` = (labels[i], seed + i, psi)."""

    kind = "model"

    def __init__(self, G: torch.nn.Module, labels: torch.Tensor, seed: int, psi: float):
        self.G, self.labels, self.seed, self.psi = G, labels, int(seed), float(psi)
        self.n = int(labels.shape[0])
        self.size = (G.resolution, G.resolution)
        self.resolution = int(G.resolution)

    def batches(self, start: int, stop: int, batch_size: int) -> Iterator[tuple[int, torch.Tensor]]:
        from ..generate import iter_uint8

        seeds = list(range(self.seed + start, self.seed + stop))
        for off, x in iter_uint8(self.G, self.labels[start:stop], seeds, self.psi, batch_size=batch_size):
            yield start + off, x


def class_plan(classes: Any, n: int, num_classes: int, seed: int) -> tuple[torch.Tensor, Any]:
    """Labels of the ``n`` samples and how to describe them.

    - ``"balanced"``: sample ``i`` is class ``i mod C`` (equal counts when C divides n).
    - ``"random"``: ``numpy.random.default_rng(seed).integers(0, C, n)`` (a prefix of a
      longer run has the same classes).
    - a list of classes (indices, names, WordNet ids; or one comma-separated string):
      sample ``i`` is the ``(i mod len)``-th.
    """
    if isinstance(classes, str) and classes.strip().lower() == "balanced":
        return torch.arange(n, dtype=torch.long) % num_classes, "balanced"
    if isinstance(classes, str) and classes.strip().lower() == "random":
        rng = np.random.default_rng(int(seed))
        return torch.from_numpy(rng.integers(0, num_classes, size=n, dtype=np.int64)), "random"
    idx = _resolve_class_list(classes)
    bad = [i for i in idx if not 0 <= i < num_classes]
    if bad:
        raise UsageError(f"class {bad[0]} out of range for a {num_classes}-class model", option="--classes")
    plan = torch.tensor(idx, dtype=torch.long)
    return plan.repeat(math.ceil(n / len(idx)))[:n], idx


def _resolve_class_list(classes: Any) -> list[int]:
    from ..classes import resolve_classes

    return [c.index for c in resolve_classes(classes, option="--classes")]


def _fingerprint_module(G: torch.nn.Module) -> str:
    info = getattr(G, "weights_info", None) or {}
    if info.get("sha256") and info.get("sha256") != "random":
        return str(info["sha256"])
    h = hashlib.sha256(type(G).__qualname__.encode())
    for k, v in G.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())   # 0-d too
    return h.hexdigest()


# ----------------------------------------------------------------------------- accumulation

@dataclass
class Accumulators:
    """Everything a run accumulates; ``done`` = samples of this shard already processed."""

    fid: S.FIDAccumulator | None
    isc: S.ISAccumulator | None
    keep_features: bool
    feats: list[torch.Tensor] = field(default_factory=list)
    done: int = 0

    def features(self) -> np.ndarray:
        if not self.feats:
            return np.zeros((0, FEATURE_DIM), np.float32)
        return torch.cat(self.feats).numpy()

    def state_dict(self) -> dict:
        return {"done": self.done,
                "fid": None if self.fid is None else self.fid.state_dict(),
                "isc": None if self.isc is None else self.isc.state_dict(),
                "features": torch.cat(self.feats) if self.feats else None}

    def load_state_dict(self, st: dict) -> None:
        self.done = int(st["done"])
        if self.fid is not None:
            self.fid.load_state_dict(st["fid"])
        if self.isc is not None:
            self.isc.load_state_dict(st["isc"])
        self.feats = [st["features"]] if st.get("features") is not None else []


def new_accumulators(*, n_total: int, need_fid: bool, is_splits: int | None, keep_features: bool,
                     device: torch.device, is_shuffle: bool = True) -> Accumulators:
    dev = torch.device("cpu") if device.type == "mps" else device    # no float64 on MPS
    return Accumulators(
        fid=S.FIDAccumulator(FEATURE_DIM, dev) if need_fid else None,
        isc=S.ISAccumulator(n_total, NUM_LOGITS, is_splits, shuffle=is_shuffle, device=dev) if is_splits else None,
        keep_features=keep_features)


class Checkpointer:
    """Saves accumulators atomically every ``every`` samples or ``seconds``; resumes them."""

    def __init__(self, path: Path, key: dict, *, every: int | None = None, seconds: float = CHECKPOINT_SECONDS):
        self.path, self.key, self.every, self.seconds = path, key, every, seconds
        self._last_done = 0
        self._last_time = time.monotonic()

    def load(self) -> dict | None:
        if not self.path.is_file():
            return None
        try:
            st = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception:                     # unreadable (e.g. disk full at save): start over
            return None
        return st if isinstance(st, dict) and st.get("key") == self.key else None

    def maybe_save(self, acc: Accumulators) -> None:
        due = (self.every is not None and acc.done - self._last_done >= self.every) or (
            time.monotonic() - self._last_time >= self.seconds)
        if due:
            self.save(acc)

    def save(self, acc: Accumulators) -> None:
        from .._io import atomic_path

        if acc.done == self._last_done and self.path.is_file():
            return
        try:
            with atomic_path(self.path) as tmp:
                torch.save({"key": self.key, **acc.state_dict()}, tmp)
        except OSError:                       # a checkpoint is a convenience, never a failure
            return
        self._last_done, self._last_time = acc.done, time.monotonic()

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()


def checkpoint_path(key: dict) -> Path:
    from . import _files

    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:24]
    return _files.home() / "runs" / f"eval-{digest}.pt"


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


def _bar(total: int, initial: int, enabled: bool, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="img", desc=desc, file=sys.stderr, disable=not enabled,
                dynamic_ncols=True, leave=False, smoothing=0.05)


def extract(src, fx: InceptionFeatures, *, n: int, keep_features: bool, is_splits: int | None,
            batch_size: int, need_fid: bool = True, progress: bool | Progress = True, desc: str = "eval",
            shard: tuple[int, int] | None = None, acc: Accumulators | None = None,
            checkpointer: Checkpointer | None = None) -> Accumulators:
    """Run samples ``shard[0]..shard[1]-1`` of ``src`` through the extractor into accumulators."""
    lo, hi = shard or (0, n)
    if acc is None:
        acc = new_accumulators(n_total=n, need_fid=need_fid, is_splits=is_splits, keep_features=keep_features,
                               device=fx.device)
    callback = progress if callable(progress) else None
    trim = _malloc_trim()
    with _bar(hi - lo, acc.done, bool(progress) and callback is None, desc) as bar:
        try:
            for off, x in src.batches(lo + acc.done, hi, batch_size):
                b = x.shape[0]
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
                bar.update(b)
                if checkpointer is not None:
                    checkpointer.maybe_save(acc)
                if callback is not None:
                    callback(acc.done, hi - lo)
        except KeyboardInterrupt:
            if checkpointer is not None:
                checkpointer.save(acc)
            raise
    return acc


# ----------------------------------------------------------------------------- distributed

@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def active(self) -> bool:
        return self.world > 1


def distributed_env() -> Dist:
    """Rank and world size from torchrun's environment (``RANK``, ``WORLD_SIZE``)."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return Dist()
    return Dist(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))


def init_distributed(device_spec: str | torch.device) -> tuple[Dist, torch.device]:
    """Join torchrun's process group (nccl on CUDA, gloo on CPU); pick this rank's device."""
    from ..runtime import resolve_device

    d = distributed_env()
    if not d.active:
        return d, resolve_device(device_spec)
    import torch.distributed as dist

    spec = str(device_spec or "auto").lower()
    use_cuda = torch.cuda.is_available() and spec in ("auto", "cuda")
    device = torch.device("cuda", d.local_rank % torch.cuda.device_count()) if use_cuda else resolve_device(spec)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    owns = False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        owns = True
    return Dist(d.rank, d.world, d.local_rank, owns), device


def _gather_features(local: torch.Tensor, counts: Sequence[int], device: torch.device) -> torch.Tensor:
    import torch.distributed as dist

    comm = device if dist.get_backend() == "nccl" else torch.device("cpu")
    m = max(counts)
    pad = torch.zeros(m, FEATURE_DIM, dtype=torch.float32, device=comm)
    pad[: local.shape[0]] = local.to(comm)
    parts = [torch.empty_like(pad) for _ in counts]
    dist.all_gather(parts, pad)
    return torch.cat([p[:c].cpu() for p, c in zip(parts, counts)])


def _reduce(acc: Accumulators, d: Dist, n: int, device: torch.device) -> None:
    if not d.active:
        return
    import torch.distributed as dist

    comm = device if dist.get_backend() == "nccl" else torch.device("cpu")
    for a in (acc.fid, acc.isc):
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
        counts = [(r + 1) * n // d.world - r * n // d.world for r in range(d.world)]
        local = torch.cat(acc.feats) if acc.feats else torch.zeros(0, FEATURE_DIM)
        acc.feats = [_gather_features(local, counts, device)]


# ----------------------------------------------------------------------------- evaluate

def normalize_metrics(metrics: str | Iterable[str]) -> tuple[str, ...]:
    items = [metrics] if isinstance(metrics, str) else list(metrics)
    out: list[str] = []
    for m in items:
        for part in str(m).split(","):
            key = part.strip().lower()
            key = {"isc": "is", "inception": "is", "inception_score": "is"}.get(key, key)
            if key == "all":
                out.extend(METRICS)
            elif key in METRICS:
                out.append(key)
            elif key:
                raise UsageError(f"unknown metric {part.strip()!r} (fid, is, kid, all)", option="--metrics")
    if not out:
        raise UsageError("no metric given (fid, is, kid, all)", option="--metrics")
    return tuple(m for m in METRICS if m in out)


def _warn_default(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr)


def evaluate(model: Any = None, weights: str | None = None, images: str | os.PathLike | None = None,
             metrics: str | Iterable[str] = ("fid", "is"), n: int | None = None, psi: float = 1.0, seed: int = 0,
             classes: Any = "balanced", ref: str | os.PathLike | Any | None = None,
             inception_weights: str | os.PathLike | InceptionFeatures | None = None, device: str = "auto", dtype: str = "fp32",
             batch_size: int | None = None, resume: bool = True, progress: bool | Progress = True,
             force: bool = False, resize: int | None = None, center_crop: int | None = None,
             is_splits: int = S.IS_SPLITS, is_shuffle: bool = True, kid_subsets: int = S.KID_SUBSETS,
             kid_subset_size: int | None = None,
             checkpoint_every: int | None = None, warn: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Evaluate a generator or a set of images; returns the ``--json`` document as a dict.

    ``n`` defaults to 50000 for a generator and to every image of ``images``. ``ref`` (a
    registered name such as ``imagenet-128``, or a statistics file) is needed for FID and
    KID. ``kid_subset_size`` defaults to ``min(1000, n, reference count)`` (a warning when
    that is below 1000); an explicit value larger than either set is refused. The Inception
    Score follows torch-fidelity (seeded shuffle, ``is_splits`` contiguous splits);
    ``is_shuffle=False`` gives ADM's evaluator's contiguous splits (identical for n=50000).

    Callers that evaluate many times (``bigganctl.sweep``) pass what they already loaded:
    a ``Generator`` as ``model``, an :class:`InceptionFeatures` as ``inception_weights`` and
    a :class:`~bigganctl.metrics.reference.Stats` as ``ref``; the numbers are the same.
    """
    t0 = time.time()
    warn = warn or _warn_default
    warnings: list[str] = []

    def note(msg: str) -> None:
        warnings.append(msg)
        if distributed_env().rank == 0:
            warn(msg)

    wanted = normalize_metrics(metrics)
    if images is not None and model is not None:
        raise UsageError("give either a model or --images, not both", option="--images")
    if n is not None and int(n) < 1:
        raise UsageError(f"must be >= 1, got {n}", option="--n")
    if is_splits < 1:
        raise UsageError(f"must be >= 1, got {is_splits}", option="--splits")
    if kid_subsets < 1:
        raise UsageError(f"must be >= 1, got {kid_subsets}", option="--kid-subsets")
    if kid_subset_size is not None and kid_subset_size < 2:
        raise UsageError(f"must be >= 2, got {kid_subset_size}", option="--kid-subset-size")
    needs_ref = [m for m in wanted if m in ("fid", "kid")]
    if needs_ref and ref is None:
        raise UsageError(f"{'/'.join(m.upper() for m in needs_ref)} needs reference statistics: "
                         "a registered name (imagenet-64|128|256|512) or a FILE.npz with mu/sigma",
                         option="--ref", hint="see `bigganctl stats list`; make one with `bigganctl stats compute`")
    if n is not None:
        _check_n(int(n), wanted, is_splits)

    # Reference statistics and the extractor's identity first: cheap, and fail fast.
    from .features import extractor_id, resolve_weights, weights_sha256
    from .reference import Stats, check_comparable, load_reference

    show = bool(progress) and distributed_env().rank == 0
    loaded_fx = inception_weights if isinstance(inception_weights, InceptionFeatures) else None
    inc_path = loaded_fx.path if loaded_fx is not None else resolve_weights(inception_weights, progress=show)
    fx_id = loaded_fx.id if loaded_fx is not None else extractor_id(weights_sha256(inc_path))
    if not needs_ref:
        ref_stats = None
    else:
        ref_stats = ref if isinstance(ref, Stats) else load_reference(ref, progress=show)
    if ref_stats is not None:
        for w in check_comparable(ref_stats, extractor_id=fx_id, force=force):
            note(w)
        if "kid" in wanted and ref_stats.features is None:
            raise UsageError(f"{ref_stats.label} holds no features; KID needs them (bigganctl stats compute "
                             "SRC --out FILE.npz --keep-features)", option="--ref")

    d, dev = init_distributed(device)
    try:
        src, info = _open_source(model, weights, images, n, psi, seed, classes, dev, dtype,
                                 resize=resize, center_crop=center_crop)
        total = src.n if n is None else int(n)
        if total > src.n:
            raise UsageError(f"{n} requested but {src.describe()} holds {src.n} images", option="--n")
        _check_n(total, wanted, is_splits)
        if ref_stats is not None:
            for w in check_comparable(ref_stats, extractor_id=fx_id, resolution=src.resolution, force=force):
                if w not in warnings:
                    note(w)
        subset = None
        if "kid" in wanted:
            subset = _kid_subset(kid_subset_size, total, int(ref_stats.features.shape[0]), note)

        fx = loaded_fx if loaded_fx is not None else InceptionFeatures(inc_path, device=dev)
        bs = int(batch_size or _default_batch(src, dev))
        lo, hi = d.rank * total // d.world, (d.rank + 1) * total // d.world
        key = {"v": CHECKPOINT_VERSION, "source": info["identity"], "n": total, "shard": [lo, hi],
               "rank": d.rank, "world": d.world, "extractor_sha256": fx.sha256, "fid": "fid" in wanted,
               "is_splits": is_splits if "is" in wanted else None, "is_shuffle": bool(is_shuffle),
               "kid": "kid" in wanted, "batch_size": bs,
               "device": dev.type}
        ckpt = Checkpointer(checkpoint_path(key), key, every=checkpoint_every)
        acc = new_accumulators(n_total=total, need_fid="fid" in wanted, is_splits=is_splits if "is" in wanted
                               else None, keep_features="kid" in wanted, device=fx.device, is_shuffle=is_shuffle)
        resumed_from = 0
        if resume:
            st = ckpt.load()
            if st is not None:
                acc.load_state_dict(st)
                resumed_from = acc.done
                if show:
                    warn(f"resuming from {ckpt.path} ({acc.done}/{hi - lo} samples done)")
        else:
            ckpt.remove()
        t_extract = time.time()
        extract(src, fx, n=total, keep_features="kid" in wanted, is_splits=is_splits if "is" in wanted else None,
                need_fid="fid" in wanted, batch_size=bs, progress=progress if d.rank == 0 else False,
                desc=f"eval {'/'.join(wanted)}", shard=(lo, hi), acc=acc, checkpointer=ckpt)
        t_extract = time.time() - t_extract
        if d.active:
            ckpt.save(acc)                    # the finished shard, in case another process fails
        _reduce(acc, d, total, dev)

        out: dict[str, Any] = {"fid": None, "is_mean": None, "is_std": None, "kid_mean": None, "kid_std": None}
        if acc.fid is not None:
            out["fid"] = _fid(acc.fid, ref_stats)
        if acc.isc is not None:
            out["is_mean"], out["is_std"] = acc.isc.result()
        if "kid" in wanted:
            out["kid_mean"], out["kid_std"] = S.kid(torch.from_numpy(acc.features()),
                                                    torch.from_numpy(ref_stats.features),
                                                    subsets=kid_subsets, subset_size=subset)
        ckpt.remove()
        seconds = time.time() - t0
        out.update(
            n=total, model=info["model"], weights=info.get("weights"), trunc=info.get("trunc"),
            trunc_convention=info.get("trunc_convention"), seed=info.get("seed"), classes=info.get("classes"),
            images=info.get("images"), ref=None if ref_stats is None else ref_stats.label,
            ref_extractor=None if ref_stats is None else ref_stats.extractor_id,
            metrics=list(wanted), extractor=EXTRACTOR, extractor_id=fx.id, inception_weights_sha256=fx.sha256,
            resolution=src.resolution, is_splits=is_splits if "is" in wanted else None,
            is_shuffle=bool(is_shuffle) if "is" in wanted else None,
            kid_subsets=kid_subsets if "kid" in wanted else None, kid_subset_size=subset,
            dtype=info.get("dtype"), device=str(dev), world_size=d.world, batch_size=bs,
            resumed_from=resumed_from if d.world == 1 else None, seconds=round(seconds, 3),
            samples_per_second=(round((hi - lo - resumed_from) * d.world / t_extract, 3)
                                if t_extract > 0 and hi - lo > resumed_from else None),
            version=__version__, warnings=warnings,
        )
        return out
    finally:
        if d.owns_group:
            import torch.distributed as dist

            with contextlib.suppress(Exception):
                dist.destroy_process_group()


def _fid(acc: S.FIDAccumulator, ref) -> float:
    """FID, in the row space of whichever side has fewer samples than dimensions (exact, fast)."""
    if acc.rows is not None or ref.features is None or len(ref.features) > ref.dim:
        return acc.frechet_distance(ref.mu, ref.sigma)
    mu, sigma = acc.mean_cov()
    return S.frechet_distance(ref.mu, ref.sigma, mu, sigma,
                              centered_rows=ref.features.astype(np.float64) - ref.mu)


def _check_n(n: int, wanted: Sequence[str], is_splits: int) -> None:
    if n < 1:
        raise UsageError(f"must be >= 1, got {n}", option="--n")
    if ("fid" in wanted or "kid" in wanted) and n < 2:
        raise UsageError(f"FID/KID need at least 2 samples (a covariance), got {n}", option="--n")
    if "is" in wanted and n < is_splits:
        raise UsageError(f"the Inception Score over {is_splits} splits needs at least {is_splits} samples, got {n}",
                         option="--n")


def _kid_subset(requested: int | None, n: int, n_ref: int, note: Callable[[str], None]) -> int:
    limit = min(n, n_ref)
    if requested is not None:
        if requested > limit:
            which = f"--n {n}" if n <= n_ref else f"the reference's {n_ref} features"
            raise UsageError(f"{requested} is larger than {which}; KID draws subsets without replacement",
                             option="--kid-subset-size", hint=f"use --kid-subset-size {limit} or more samples")
        return requested
    if limit < S.KID_SUBSET_SIZE:
        if limit < 2:
            raise UsageError(f"KID needs at least 2 samples on each side, have {n} and {n_ref}", option="--n")
        note(f"KID subset size reduced from {S.KID_SUBSET_SIZE} to {limit} (only {n} samples, "
             f"{n_ref} reference features); values are not comparable with subset size {S.KID_SUBSET_SIZE}")
        return limit
    return S.KID_SUBSET_SIZE


def _default_batch(src, device: torch.device) -> int:
    if isinstance(src, GeneratorSource):
        from ..generate import default_batch_size

        return default_batch_size(device, src.resolution)
    return 16 if device.type == "cpu" else 100


def _open_source(model, weights, images, n, psi, seed, classes, device, dtype, *, resize, center_crop):
    """(source, info): the samples to evaluate and what describes them in the result."""
    if images is not None:
        from .images import Preprocess, open_images

        src = open_images(images, Preprocess(resize=resize, center_crop=center_crop), option="--images")
        return src, {"model": None, "images": str(images), "identity": src.identity()}
    if resize is not None or center_crop is not None:
        raise UsageError("only applies to --images", option="--resize" if resize is not None else "--center-crop")
    from ..runtime import dtype_name, resolve_dtype
    from ..sampling import check_psi

    if model is None or isinstance(model, (str, os.PathLike)):
        from ..loader import load_generator

        G = load_generator(model or "biggan-deep-128", weights=weights, device=device, dtype=dtype)
        name = getattr(getattr(G, "spec", None), "name", None) or str(model)
    else:
        G = model
        if weights is not None:
            raise UsageError("weights= only applies to a model name or folder", option="--weights")
        name = getattr(getattr(G, "spec", None), "name", None) or type(G).__name__
    psi = check_psi(psi, G.truncation)
    total = DEFAULT_N if n is None else int(n)
    labels, cls_desc = class_plan(classes, total, G.num_classes, seed)
    p = next(iter(G.parameters()), None)
    gdtype = dtype_name(p.dtype) if p is not None and p.dtype in (torch.float32, torch.bfloat16, torch.float16) \
        else dtype_name(resolve_dtype(dtype))
    winfo = getattr(G, "weights_info", None) or {}
    fingerprint = _fingerprint_module(G)
    info = {"model": name, "weights": winfo.get("sha256") or fingerprint, "trunc": psi,
            "trunc_convention": G.truncation, "seed": int(seed), "classes": cls_desc, "dtype": gdtype,
            "identity": {"kind": "model", "model": name, "weights": fingerprint, "psi": psi, "seed": int(seed),
                         "classes": cls_desc, "dtype": gdtype, "convention": G.truncation,
                         "resolution": int(G.resolution)}}
    return GeneratorSource(G, labels, seed, psi), info


def check_gates(result: dict[str, Any], *, max_fid: float | None = None, min_is: float | None = None) -> None:
    """Raise GateFailed (exit 3) when a quality gate is missed."""
    missed = []
    if max_fid is not None and result.get("fid") is not None and not result["fid"] <= max_fid:
        missed.append(f"FID {result['fid']:.4f} > --max-fid {max_fid:g}")
    if min_is is not None and result.get("is_mean") is not None and not result["is_mean"] >= min_is:
        missed.append(f"IS {result['is_mean']:.4f} < --min-is {min_is:g}")
    if missed:
        raise GateFailed("quality gate missed: " + "; ".join(missed))
