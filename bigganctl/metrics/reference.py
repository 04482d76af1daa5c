"""Reference statistics: the registry of named ones, the file formats, comparability.

(``compute_stats``, which makes them from images, is an operation: :mod:`bigganctl.api.stats`.)

A reference is ``mu`` and ``sigma`` of the Inception pool_3 features of a real image set
(and, for KID, the features themselves), plus metadata saying how they were made. FID is
only meaningful between statistics of one extractor, so every reference carries an
``extractor_id`` and mismatches are refused unless forced.

Registered names (``bigganctl stats pull NAME``): ``imagenet-64|128|256|512``, the OpenAI
ADM reference batches (statistics over the whole ImageNet training set at that
resolution, computed with the TF Inception graph torch-fidelity ports).

Files read (the format is recognised from the keys and the name):

=================================  =============================================================
bigganctl ``.npz``                  ``mu``, ``sigma``, ``bigganctl_meta`` (JSON), optional ``features``
ADM reference batch ``.npz``       ``mu``, ``sigma``, ``mu_s``, ``sigma_s``, ``arr_0`` (TF Inception; KID:
                                   the features of ``arr_0``, :mod:`.ref_features`)
BigGAN-PyTorch moments ``.npz``    ``*inception_moments*.npz``: ``mu``, ``sigma`` of *torchvision* Inception
other ``.npz`` with ``mu/sigma``   pytorch-fid / TTUR style; assumed TF-Inception pool_3 (warned)
torch-fidelity cache ``.pt``       ``*-inception-v3-compat-stat-fid-2048.pt`` (``mu``, ``sigma``) or
                                   ``*-inception-v3-compat-features-2048.pt`` (features, so KID too)
=================================  =============================================================
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..weights import hub
from .._io import atomic_path
from ..errors import RuntimeFailure, UsageError, WeightsUnavailable
from ..integrity import arrays_digest, describe_failure
from ..progress import Reporter
from ..weights.registry import RemoteFile
from .features import EXTRACTOR, FEATURE_DIM, FEATURE_LAYER, OFFICIAL_ID
from .maths import sigma_problem

FORMAT = "bigganctl-stats"
#: ``meta["format"]`` of an ADM reference batch (whose ``arr_0`` images give KID's features).
ADM_FORMAT = "adm-reference-batch"
FORMAT_VERSION = 1
META_KEY = "bigganctl_meta"
#: sha256 of the other arrays (bigganctl.integrity.arrays_digest); checked when present
DIGEST_ARRAY = "bigganctl_sha256"
TORCHVISION_ID = "torchvision-inception-v3"


@dataclass(frozen=True)
class RefSpec:
    name: str
    resolution: int
    file: RemoteFile
    description: str


_ADM = "https://openaipublic.blob.core.windows.net/diffusion/jul-2021/ref_batches/imagenet"


def _adm(res: int, filename: str) -> RefSpec:
    return RefSpec(
        name=f"imagenet-{res}", resolution=res,
        file=RemoteFile(filename, (f"{_ADM}/{res}/{filename}",)),
        description=f"ImageNet {res}x{res} train set (OpenAI ADM reference batch: TF Inception pool_3 "
                    "statistics of the whole set + 10k images)")


REFERENCES: dict[str, RefSpec] = {s.name: s for s in (
    _adm(64, "VIRTUAL_imagenet64_labeled.npz"),
    _adm(128, "VIRTUAL_imagenet128_labeled.npz"),
    _adm(256, "VIRTUAL_imagenet256_labeled.npz"),
    _adm(512, "VIRTUAL_imagenet512.npz"),
)}


@dataclass
class Stats:
    """mu (float64 [D]), sigma (float64 [D, D]), optional features (float32 [N, D]), metadata;
    optional ``mu_s``/``sigma_s``: sFID's spatial statistics (``mixed_6/conv``, 2023 dims)."""

    mu: np.ndarray
    sigma: np.ndarray
    features: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    mu_s: np.ndarray | None = None
    sigma_s: np.ndarray | None = None

    @property
    def has_spatial(self) -> bool:
        return self.mu_s is not None and self.sigma_s is not None

    @property
    def dim(self) -> int:
        return int(self.mu.shape[0])

    @property
    def extractor_id(self) -> str:
        return str(self.meta.get("extractor_id", "unknown"))

    @property
    def label(self) -> str:
        return str(self.meta.get("name") or self.meta.get("path") or self.meta.get("source") or "reference")


# ----------------------------------------------------------------------------- reading

def get_ref_spec(name: str) -> RefSpec | None:
    return REFERENCES.get(name)


def unknown_ref(ref: str, option: str) -> UsageError:
    import difflib

    close = difflib.get_close_matches(ref, REFERENCES, n=2)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return UsageError(f"{ref!r} is neither a registered reference ({', '.join(REFERENCES)}){hint} nor a file",
                      param=option)


def reference_path(name: str, *, progress: Reporter | None = None) -> Path:
    """The cached file of a registered reference, downloaded when online."""
    spec = REFERENCES[name]
    try:
        return hub.ensure_file(spec.file, "stats", pull_name=name, alternative="--ref FILE.npz", progress=progress)
    except WeightsUnavailable as e:
        why = "offline mode is on (BIGGANCTL_OFFLINE / HF_HUB_OFFLINE)" if hub.offline() else \
            f"the download failed ({e.hint or e.message})"
        raise WeightsUnavailable(
            f"reference statistics {name} ({spec.file.filename}) are not in the cache and {why}",
            hint=f"run `bigganctl stats pull {name}` with network access (then copy $BIGGANCTL_HOME/stats/ "
                 f"here), or download {spec.file.urls[0]} by hand and pass --ref FILE.npz") from None


def load_reference(ref: str | os.PathLike, *, option: str = "ref", progress: Reporter | None = None) -> Stats:
    """A registered name or a statistics file -> :class:`Stats` (features only if stored)."""
    ref_s = str(ref)
    if ref_s in REFERENCES:
        spec = REFERENCES[ref_s]
        st = read_stats(reference_path(ref_s, progress=progress), option=option)
        st.meta.update(name=ref_s, resolution=spec.resolution, description=spec.description)
        return st
    p = Path(ref_s).expanduser()
    if not p.exists():
        raise unknown_ref(ref_s, option)
    return read_stats(p, option=option)


def _npz_header_shape(path: Path, key: str) -> tuple[int, ...] | None:
    """Shape of ``key`` in an .npz without loading it."""
    try:
        with zipfile.ZipFile(path) as zf, zf.open(f"{key}.npy") as fh:
            version = np.lib.format.read_magic(fh)
            hdr = (np.lib.format.read_array_header_1_0(fh) if version == (1, 0)
                   else np.lib.format.read_array_header_2_0(fh))
            return tuple(hdr[0])
    except (KeyError, OSError, ValueError, zipfile.BadZipFile):
        return None


def read_stats(path: str | os.PathLike, *, option: str = "ref") -> Stats:
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{p} is a folder; compute its statistics first: bigganctl stats compute {p} "
                         "--out ref.npz", param=option)
    if p.suffix.lower() == ".pt":
        return _read_torch_fidelity(p, option)
    if p.suffix.lower() != ".npz":
        raise UsageError(f"{p}: expected an .npz with mu/sigma (or a torch-fidelity .pt cache file)", param=option)
    try:
        z = np.load(p, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise UsageError(f"{p} is not a readable .npz ({str(e)[:150]})", param=option) from None
    with z:
        keys = set(z.files)
        if not {"mu", "sigma"} <= keys:
            what = " (it holds images: compute statistics with `bigganctl stats compute " \
                   f"{p} --out ref.npz`)" if "arr_0" in keys else ""
            raise UsageError(f"{p} has no mu/sigma (keys: {', '.join(sorted(keys)) or 'none'}){what}",
                             param=option)
        mu, sigma = np.asarray(z["mu"]), np.asarray(z["sigma"])
        features = np.asarray(z["features"], dtype=np.float32) if "features" in keys else None
        spatial = (np.asarray(z["mu_s"]), np.asarray(z["sigma_s"])) if {"mu_s", "sigma_s"} <= keys else (None, None)
        raw_meta = str(z[META_KEY]) if META_KEY in keys else None
        if DIGEST_ARRAY in keys and str(z[DIGEST_ARRAY]) != arrays_digest({k: z[k] for k in keys - {DIGEST_ARRAY}}):
            raise UsageError(f"{p}: its arrays do not match the integrity digest bigganctl stored with them "
                             "(altered or damaged since it was written); compute it again with "
                             "`bigganctl stats compute`", param=option)
    meta: dict[str, Any] = {"path": str(p), "source": str(p)}
    if raw_meta is not None:
        try:
            meta.update(json.loads(raw_meta))
        except ValueError:
            raise UsageError(f"{p}: unreadable {META_KEY}", param=option) from None
        meta["path"] = str(p)          # the stored "source" stays: where the images came from
    elif "mu_s" in keys or "arr_0" in keys:
        shape = _npz_header_shape(p, "arr_0")
        meta.update(format=ADM_FORMAT, extractor_id=OFFICIAL_ID, layer="pool_3",
                    count=None, note="ADM reference batch: statistics of the whole dataset (count not stored)")
        if shape and len(shape) == 4:
            meta.update(resolution=int(shape[1]), image_count=int(shape[0]))
    elif re.search(r"inception_moments", p.name, re.I):
        meta.update(format="biggan-pytorch-moments", extractor_id=TORCHVISION_ID, layer="pool (2048)",
                    note="BigGAN-PyTorch moments are computed with torchvision's Inception-v3, not the TF "
                         "graph: their FIDs are not comparable with TF-Inception numbers")
    else:
        meta.update(format="mu-sigma-npz", extractor_id=OFFICIAL_ID, assumed=True,
                    note="no metadata: assumed TF-Inception pool_3 statistics (pytorch-fid / TTUR style)")
    return _checked(Stats(mu, sigma, features, meta, *spatial), p, option)


def _numpy_safe_globals() -> list:
    core = getattr(np, "_core", None) or np.core
    return [core.multiarray._reconstruct, np.ndarray, np.dtype,
            *{type(np.dtype(t)) for t in (np.float32, np.float64, np.float16)}]


def _read_torch_fidelity(p: Path, option: str) -> Stats:
    import pickle

    import torch

    m = re.search(r"-([a-z0-9.-]+?)-(stat-fid|features)-([A-Za-z0-9_]+)\.pt$", p.name)
    if not m:
        raise UsageError(f"{p}: not a torch-fidelity cache file (expected NAME-EXTRACTOR-stat-fid-LAYER.pt "
                         "or NAME-EXTRACTOR-features-LAYER.pt)", param=option)
    extractor, kind, layer = m.groups()
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            obj = torch.load(p, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, OSError, EOFError) as e:
        raise UsageError(f"{p}: unreadable ({str(e).splitlines()[0][:150]})", param=option) from None
    meta = {"path": str(p), "source": str(p), "format": "torch-fidelity-cache", "layer": layer,
            "extractor_id": OFFICIAL_ID if extractor == EXTRACTOR else extractor,
            "assumed": extractor == EXTRACTOR,
            "note": "torch-fidelity cache; assumed its default (official) Inception weights"}
    features = None
    if kind == "features":
        feats = obj.numpy() if isinstance(obj, torch.Tensor) else np.asarray(obj)
        if feats.ndim != 2 or feats.shape[0] < 2:
            raise UsageError(f"{p}: expected features [N, D] with N >= 2, got {list(feats.shape)}", param=option)
        features = feats.astype(np.float32)
        mu, sigma = features.astype(np.float64).mean(0), np.cov(features.astype(np.float64), rowvar=False)
        meta["count"] = int(features.shape[0])
    elif isinstance(obj, dict) and "mu" in obj and "sigma" in obj:
        mu, sigma = np.asarray(obj["mu"]), np.asarray(obj["sigma"])
    else:
        raise UsageError(f"{p} has no mu/sigma", param=option)
    return _checked(Stats(mu, sigma, features, meta), p, option)


def _checked(st: Stats, p: Path, option: str) -> Stats:
    mu, sigma = np.asarray(st.mu, np.float64), np.asarray(st.sigma, np.float64)
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise UsageError(f"{p}: mu {list(mu.shape)} and sigma {list(sigma.shape)} do not fit together "
                         "(expected [D] and [D, D])", param=option)
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise UsageError(f"{p}: mu/sigma contain NaN or infinite values", param=option)
    problem = sigma_problem(sigma)
    if problem:
        raise UsageError(f"{p}: sigma is not a covariance matrix: {problem}", param=option)
    if st.features is not None and (st.features.ndim != 2 or st.features.shape[1] != mu.shape[0]):
        raise UsageError(f"{p}: features {list(st.features.shape)} do not match mu", param=option)
    st.mu, st.sigma = mu, sigma
    if st.has_spatial:
        mu_s, sigma_s = np.asarray(st.mu_s, np.float64), np.asarray(st.sigma_s, np.float64)
        if mu_s.ndim != 1 or sigma_s.shape != (mu_s.shape[0], mu_s.shape[0]) or not (
                np.isfinite(mu_s).all() and np.isfinite(sigma_s).all()):
            raise UsageError(f"{p}: mu_s {list(mu_s.shape)} / sigma_s {list(sigma_s.shape)} are not finite "
                             "statistics of one dimension", option=option)
        st.mu_s, st.sigma_s = mu_s, sigma_s
    return st


# ----------------------------------------------------------------------------- compatibility

def check_comparable(ref: Stats, *, extractor_id: str, resolution: int | None = None, force: bool = False,
                     option: str = "ref") -> list[str]:
    """Refuse statistics that cannot be compared; return warnings for what is assumed/forced.

    A different feature dimension is always refused (there is nothing to compare). A
    different extractor or resolution is refused unless ``force``.
    """
    warnings: list[str] = []
    if ref.dim != FEATURE_DIM:
        raise UsageError(f"{ref.label} has {ref.dim}-dimensional features; {EXTRACTOR} layer "
                         f"{FEATURE_LAYER} has {FEATURE_DIM} (statistics of another layer or network)",
                         param=option)
    if ref.extractor_id != extractor_id:
        msg = (f"{ref.label} was computed with extractor {ref.extractor_id}, this run uses {extractor_id}; "
               "distances between features of different networks are meaningless")
        if ref.extractor_id == TORCHVISION_ID:
            msg += " (BigGAN-PyTorch's moments use torchvision's Inception)"
        if not force:
            raise UsageError(msg, param=option,
                             hint="use statistics of the same Inception weights, or pass --force to compare anyway")
        warnings.append(f"forced: {msg}")
    elif ref.meta.get("assumed"):
        warnings.append(f"{ref.label}: {ref.meta.get('note')}")
    ref_res = ref.meta.get("resolution")
    if resolution is not None and ref_res is not None and ref_res != resolution:
        msg = f"{ref.label} is at resolution {ref_res}, the evaluated images at {resolution}"
        if not force:
            raise UsageError(msg, param=option, hint="use the reference of the same resolution (e.g. "
                             f"imagenet-{resolution if isinstance(resolution, int) else 'R'}), or pass --force")
        warnings.append(f"forced: {msg}")
    return warnings


# ----------------------------------------------------------------------------- writing

def write_stats(path: str | os.PathLike, st: Stats) -> Path:
    """Write a bigganctl statistics ``.npz`` atomically."""
    p = Path(path)
    arrays: dict[str, np.ndarray] = {"mu": st.mu.astype(np.float64), "sigma": st.sigma.astype(np.float64),
                                     META_KEY: np.array(json.dumps(st.meta, sort_keys=True, default=str))}
    if st.features is not None:
        arrays["features"] = st.features.astype(np.float32)
    if st.has_spatial:
        arrays.update(mu_s=st.mu_s.astype(np.float64), sigma_s=st.sigma_s.astype(np.float64))
    arrays[DIGEST_ARRAY] = np.array(arrays_digest(arrays))
    try:
        with atomic_path(p, suffix=".npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
    except (OSError, ValueError) as e:          # numpy reports a full disk as ValueError/OSError
        raise RuntimeFailure(f"cannot write {p}: {describe_failure(e)}") from None
    return p


def stats_meta(*, extractor: dict[str, str], count: int, resolution: int | None, preprocessing: str, source: str,
               has_features: bool, **extra: Any) -> dict[str, Any]:
    import torch_fidelity

    return {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "extractor": EXTRACTOR, "extractor_id": extractor["id"], "layer": FEATURE_LAYER,
        "inception_weights_sha256": extractor["weights_sha256"],
        "count": int(count), "resolution": resolution, "preprocessing": preprocessing, "source": source,
        "has_features": has_features,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "bigganctl": __version__, "torch_fidelity": torch_fidelity.__version__, **extra,
    }


# ----------------------------------------------------------------------------- list / info

def list_references() -> list[dict[str, Any]]:
    rows = []
    for spec in REFERENCES.values():
        p = hub.cached_path(spec.file, "stats")
        rows.append({"name": spec.name, "resolution": spec.resolution, "cached": p is not None,
                     "path": str(p) if p else None, "url": spec.file.urls[0], "description": spec.description})
    return rows


def stats_info(ref: str, *, option: str = "NAME|FILE") -> dict[str, Any]:
    """Metadata and a summary of a registered reference (must be cached) or a stats file."""
    if ref in REFERENCES:
        spec = REFERENCES[ref]
        p = hub.cached_path(spec.file, "stats")
        info: dict[str, Any] = {"name": ref, "resolution": spec.resolution, "url": spec.file.urls[0],
                                "description": spec.description, "cached": p is not None,
                                "path": str(p) if p else None}
        if p is None:
            info["hint"] = f"bigganctl stats pull {ref}"
            return info
        st = read_stats(p, option=option)
        st.meta.update(resolution=spec.resolution)
    else:
        p = Path(ref).expanduser()
        if not p.exists():
            raise unknown_ref(ref, option)
        st = read_stats(p, option=option)
        info = {"path": str(p)}
    info.update({k: v for k, v in st.meta.items() if k not in info})
    info.update(dim=st.dim, has_features=st.features is not None, has_spatial=st.has_spatial,
                feature_count=None if st.features is None else int(st.features.shape[0]),
                trace_sigma=float(np.trace(st.sigma)), mu_norm=float(np.linalg.norm(st.mu)))
    return info
