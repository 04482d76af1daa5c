"""KID's reference features of an ADM reference batch: its images through the run's extractor, once.

An ADM reference batch (``imagenet-64|128|256|512``, or any ``.npz`` with ``mu``, ``sigma``,
``mu_s``, ``sigma_s`` and ``arr_0``) stores FID statistics of the whole dataset but no
features; its ``arr_0`` images (10k, uint8 NHWC) are the reference set for KID. The first
time KID needs them, their pool_3 features are computed with the run's Inception weights
(native size, no preprocessing: exactly what ``stats compute FILE.npz --keep-features``
stores) and cached at::

    <home>/stats/features/<reference sha256[:16]>-<Inception weights sha256[:16]>.npz

(``features`` float32 [N, 2048], ``meta``, JSON with both full sha256s, checked on
load, and ``sha256``, the digest of both: an altered file is computed again). A cache
that cannot be written (read-only or full home) costs only speed, with a warning. The file is written atomically, under a lock, so two processes never compute it
twice; later uses load it without a forward pass. Under ``torchrun`` every rank extracts its
contiguous share, the features are gathered in order, and rank 0 writes the cache (the ranks
first agree on whether every one of them can read it). ``bigganctl stats pull NAME
--features`` fills the cache ahead of time.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import sys
import zipfile
from pathlib import Path

import numpy as np

from .. import __version__
from ..weights import hub
from .._io import atomic_path, file_lock, make_dir
from ..errors import RuntimeFailure, UsageError
from ..integrity import arrays_digest, describe_failure
from ..progress import Reporter
from ..runtime.distributed import Dist, all_true, shard
from .extract import extract, reduce
from .features import FEATURE_DIM, InceptionFeatures
from .reference import ADM_FORMAT, Stats
from .sources import NpzSource

FEATURES_DIR = "stats/features"
NO_FEATURES_HINT = ("recompute the reference with `bigganctl stats compute SRC --out FILE.npz --keep-features`, "
                    "or use an ADM reference batch (imagenet-64|128|256|512, or an .npz with arr_0 and mu/sigma)")


def is_adm_batch(ref: Stats) -> bool:
    """An ADM reference batch whose ``arr_0`` images can give KID's features."""
    return ref.meta.get("format") == ADM_FORMAT and bool(ref.meta.get("image_count"))


def can_give_features(ref: Stats) -> bool:
    return ref.features is not None or is_adm_batch(ref)


def feature_count(ref: Stats) -> int:
    """How many reference features KID will have (known before they are computed)."""
    return int(ref.features.shape[0]) if ref.features is not None else int(ref.meta["image_count"])


def cache_path(ref_sha256: str, weights_sha256: str) -> Path:
    return hub.home() / FEATURES_DIR / f"{ref_sha256[:16]}-{weights_sha256[:16]}.npz"


def _read(p: Path, ident: dict) -> np.ndarray | None:
    try:
        with np.load(p, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            feats = np.asarray(z["features"], dtype=np.float32)
            if str(z["sha256"]) != arrays_digest({"features": z["features"], "meta": z["meta"]}):
                return None                   # altered since written: computed again
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None
    same = all(meta.get(k) == v for k, v in ident.items())
    return feats if same and feats.ndim == 2 and feats.shape[1] == FEATURE_DIM else None


def _write(p: Path, feats: np.ndarray, ident: dict) -> None:
    meta = {**ident, "count": int(feats.shape[0]), "version": __version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    arrays = {"features": feats.astype(np.float32), "meta": np.array(json.dumps(meta, sort_keys=True))}
    try:
        with atomic_path(p, suffix=".npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays, sha256=np.array(arrays_digest(arrays)))
    except Exception as e:                    # a cache: a failed write costs only speed
        print(f"warning: cannot keep the reference features in {p} ({describe_failure(e)}); "
              "they are computed again next time", file=sys.stderr)


def _compute(path: Path, fx: InceptionFeatures, *, batch_size: int, progress: Reporter | None,
             dist: Dist) -> np.ndarray:
    src = NpzSource(path, option="ref")
    lo, hi = shard(src.n, dist)
    acc = extract(src, fx, n=src.n, keep_features=True, is_splits=None, need_fid=False, batch_size=batch_size,
                  progress=progress if dist.rank == 0 else None, desc="reference features (KID, once)",
                  shard=(lo, hi))
    reduce(acc, dist, src.n, fx.device)
    return acc.features()


def fill_features(ref: Stats, fx: InceptionFeatures, *, batch_size: int, progress: Reporter | None = None,
                  dist: Dist = Dist()) -> Path | None:
    """Give ``ref`` its KID features: kept as they are, or (ADM batch) loaded from the cache or
    computed with ``fx`` and cached. Returns the cache file (None when ``ref`` carried them)."""
    if ref.features is not None:
        return None
    if not is_adm_batch(ref):
        raise UsageError(f"{ref.label} holds no features; KID needs them", param="ref", hint=NO_FEATURES_HINT)
    path = Path(ref.meta["path"])
    ident = {"reference_sha256": hub.cached_sha256(path), "inception_weights_sha256": fx.sha256,
             "extractor_id": fx.id, "reference": path.name}
    target = cache_path(ident["reference_sha256"], fx.sha256)
    feats = _read(target, ident)
    if dist.active:
        if not all_true(feats is not None, dist, fx.device, what="checking the reference feature cache"):
            feats = _compute(path, fx, batch_size=batch_size, progress=progress, dist=dist)
            if dist.rank == 0:
                _write(target, feats, ident)
    elif feats is None:
        with contextlib.ExitStack() as stack:
            with contextlib.suppress(RuntimeFailure, OSError):     # read-only home: computed, not kept
                make_dir(target.parent, "the feature cache ")
                stack.enter_context(file_lock(target.with_name(f".{target.name}.lock")))
            feats = _read(target, ident)          # another process may have written it meanwhile
            if feats is None:
                feats = _compute(path, fx, batch_size=batch_size, progress=progress, dist=dist)
                _write(target, feats, ident)
    ref.features = feats
    ref.meta["features_cache"] = str(target)
    return target
