"""One evaluation: explicit inputs -> FID / IS / KID / sFID / precision / recall and the result document.

The inputs are objects the caller has already made (:mod:`bigganctl.api.evaluate` for
``bigganctl.evaluate`` and ``bigganctl eval``; :mod:`bigganctl.api.sweep` once per psi): a
source of uint8 images (:mod:`.sources`), the Inception extractor (:mod:`.features`),
reference statistics (:mod:`.reference`) and a :class:`Protocol` (which metrics, how).
Nothing here loads a model or decides anything from which arguments happen to be given.

Generated sample ``i`` uses noise seed ``seed + i`` and the ``i``-th class of the class
plan (:func:`bigganctl.noise.class_plan`), so the numbers never depend on the batch size
or the number of processes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from .. import __version__
from ..checks import check_int
from ..errors import GateFailed, UsageError
from .gates import text as gate_text, verdicts
from ..progress import Reporter
from ..runtime.device import check_memory, default_batch_size
from ..noise import check_psi, class_plan
from . import maths as S
from .manifold import K as PR_K, precision_recall
from ..runtime.distributed import Dist, shard
from .extract import CHECKPOINT_VERSION, extract_resumable
from .features import EXTRACTOR, FEATURE_DIM, InceptionFeatures
from .capabilities import SPATIAL_HINT, Protocol, kid_plan, kid_subset  # noqa: F401  (re-exported)
from .ref_features import feature_count, fill_features, is_adm_batch
from .reference import Stats, check_comparable
from ..models.base import model_name
from .sources import GeneratorSource, ImageSource, fingerprint, generator_dtype
from ..types import Classes

METRICS = ("fid", "is", "kid", "sfid", "precision", "recall")
#: Metrics ``all`` gives only where the reference supports them (otherwise null and a note).
REF_OPTIONAL = ("kid", "sfid", "precision", "recall")
_ALIASES = {"isc": "is", "inception": "is", "inception_score": "is", "prec": "precision", "rec": "recall"}
_NAMES = "fid, is, kid, sfid, precision, recall, pr, all"
DEFAULT_N = 50_000

Note = Callable[[str], None]

#: The version of the metric definitions (FID, IS, KID and their settings' meaning) in
#: result documents. Bumped when a change makes numbers incomparable with earlier ones;
#: ``bigganctl compare`` refuses to compare documents of different metric versions.
METRIC_VERSION = 1


def normalize_metrics(metrics: str | Iterable[str]) -> tuple[str, ...]:
    items = [metrics] if isinstance(metrics, str) else list(metrics)
    out: list[str] = []
    for m in items:
        for part in str(m).split(","):
            key = part.strip().lower()
            key = _ALIASES.get(key, key)
            if key == "all":
                out.extend(METRICS)
            elif key in ("pr", "prc"):
                out.extend(("precision", "recall"))
            elif key in METRICS:
                out.append(key)
            elif key:
                raise UsageError(f"unknown metric {part.strip()!r} ({_NAMES})", param="metrics")
    if not out:
        raise UsageError(f"no metric given ({_NAMES})", param="metrics")
    return tuple(m for m in METRICS if m in out)


def kid_if_available(metrics: str | Iterable[str]) -> bool:
    """True when KID came with ``all`` and was not named itself: then a reference that cannot
    give features drops KID (with a note) instead of failing."""
    items = [metrics] if isinstance(metrics, str) else list(metrics)
    keys = [part.strip().lower() for m in items for part in str(m).split(",")]
    return "all" in keys and "kid" not in keys


def optional_metrics(metrics: str | Iterable[str]) -> tuple[str, ...]:
    """The reference-dependent metrics that came with ``all`` and were not named themselves:
    dropped (with a note) when the reference cannot give them."""
    items = [metrics] if isinstance(metrics, str) else list(metrics)
    keys = [part.strip().lower() for m in items for part in str(m).split(",")]
    if "all" not in keys:
        return ()
    rest = [k for k in keys if k and k != "all"]
    named = set(normalize_metrics(rest)) if rest else set()
    return tuple(m for m in REF_OPTIONAL if m not in named)


def check_n(n: int, wanted: Sequence[str], is_splits: int, is_adm: bool = False,
            optional: Sequence[str] = ()) -> None:
    """Refuse an N the metrics cannot use (precision/recall that came with ``all``, in
    ``optional``, are dropped later instead: :func:`run`)."""
    check_int(n, "n")
    if any(m in wanted for m in ("fid", "kid", "sfid")) and n < 2:
        raise UsageError(f"FID/KID/sFID need at least 2 samples (a covariance), got {n}", param="n")
    if any(m in wanted and m not in optional for m in ("precision", "recall")) and n < PR_K + 1:
        raise UsageError(f"precision/recall need at least {PR_K + 1} samples (a k={PR_K} neighbourhood), got {n}",
                         param="n")
    if "is" in wanted and not is_adm and n < is_splits:
        raise UsageError(f"the Inception Score over {is_splits} splits needs at least {is_splits} samples, got {n}",
                         param="n")
    # held per sample: the class plan and IS's split index (~48 B at their peak); KID's features
    keeps = any(m in wanted for m in ("kid", "precision", "recall"))
    per_sample = 48 + (2 * 4 * FEATURE_DIM if keeps else 0)
    check_memory(n * per_sample, what=f"{n} samples ({'/'.join(wanted)})", param="n",
                 hint="evaluate fewer samples; FID, sFID and IS stream their features, KID and "
                      "precision/recall keep them")


def check_reference(ref: Stats | None, protocol: Protocol, *, extractor_id: str, force: bool, note: Note,
                    resolution: Any = None, seen: Sequence[str] = ()) -> None:
    """Refuse statistics that cannot be compared; note the warnings not in ``seen``."""
    if ref is None:
        return
    for w in check_comparable(ref, extractor_id=extractor_id, resolution=resolution, force=force):
        if w not in seen:
            note(w)


def fid(acc: S.FIDAccumulator, ref: Stats) -> float:
    """FID, in the row space of whichever side has fewer samples than dimensions (exact, fast);
    not an ADM batch's features, which are not those its ``mu``/``sigma`` came from."""
    if acc.rows is not None or ref.features is None or len(ref.features) > ref.dim or is_adm_batch(ref):
        return acc.frechet_distance(ref.mu, ref.sigma)
    mu, sigma = acc.mean_cov()
    return S.frechet_distance(ref.mu, ref.sigma, mu, sigma,
                              centered_rows=ref.features.astype(np.float64) - ref.mu)


# ----------------------------------------------------------------------------- sources

def generator_source(G: torch.nn.Module, *, n: int, psi: float, seed: int, classes: Classes,
                     dtype: str) -> tuple[GeneratorSource, dict[str, Any]]:
    """(source, info) for ``n`` samples of a loaded generator; ``dtype``: the requested
    precision, reported for a generator without parameters."""
    name = model_name(G)
    psi = check_psi(psi, G.truncation)
    labels, cls_desc = class_plan(classes, n, G.num_classes, seed)
    gdtype = generator_dtype(G, dtype)
    winfo = getattr(G, "weights_info", None) or {}
    fp = fingerprint(G)
    info = {"model": name, "weights": winfo.get("sha256") or fp, "trunc": psi,
            "trunc_convention": G.truncation, "seed": int(seed), "classes": cls_desc, "dtype": gdtype,
            "identity": {"kind": "model", "model": name, "weights": fp, "psi": psi, "seed": int(seed),
                         "classes": cls_desc, "dtype": gdtype, "convention": G.truncation,
                         "resolution": int(G.resolution)}}
    return GeneratorSource(G, labels, seed, psi), info


def images_info(src: ImageSource, images: Any) -> dict[str, Any]:
    return {"model": None, "images": str(images), "identity": src.identity()}


def sized(src: ImageSource, n: int | None, protocol: Protocol) -> int:
    """How many samples of ``src`` to evaluate (``n``, or every image), checked."""
    total = src.n if n is None else int(n)
    if total > src.n:
        raise UsageError(f"{n} requested but {src.describe()} holds {src.n} images", param="n")
    check_n(total, protocol.metrics, protocol.is_splits, protocol.is_adm, protocol.optional)
    return total


# ----------------------------------------------------------------------------- the run

@dataclass(frozen=True)
class RunOptions:
    """How to run (never what the numbers are): batch size (None: the default rule),
    resuming, extra checkpoints every N samples, the torch.compile mode (None: eager; a
    resolved mode, :func:`bigganctl.runtime.compiling.resolve_compile`)."""

    batch_size: int | None = None
    resume: bool = True
    checkpoint_every: int | None = None
    compile: str | None = None


def numbers(acc: Any, ref: Stats | None, protocol: Protocol, kid_subset_size: int | None,
            device: torch.device) -> dict[str, Any]:
    """The metrics of the reduced accumulators (null where not computed)."""
    wanted = protocol.metrics
    out: dict[str, Any] = {"fid": None, "is_mean": None, "is_std": None, "kid_mean": None, "kid_std": None,
                           "sfid": None, "precision": None, "recall": None}
    if acc.fid is not None:
        out["fid"] = fid(acc.fid, ref)
    if acc.isc is not None:
        out["is_mean"], out["is_std"] = acc.isc.result()
    if acc.sfid is not None:
        out["sfid"] = acc.sfid.frechet_distance(ref.mu_s, ref.sigma_s)
    if "kid" in wanted:
        out["kid_mean"], out["kid_std"] = S.kid(torch.from_numpy(acc.features()), torch.from_numpy(ref.features),
                                                subsets=protocol.kid_subsets, subset_size=kid_subset_size)
    if "precision" in wanted or "recall" in wanted:
        pr = precision_recall(torch.from_numpy(acc.features()), torch.from_numpy(ref.features),
                              distances=protocol.pr_distances, device=device)
        out.update({m: getattr(pr, m) for m in ("precision", "recall") if m in wanted})
    return out


def _collect(warn: Note, warnings: list[str]) -> Note:
    """``warn``, and the message kept in the result's ``warnings``."""
    def both(msg: str) -> None:
        warnings.append(msg)
        warn(msg)
    return both


def run(src: ImageSource, info: dict[str, Any], *, total: int, fx: InceptionFeatures, ref: Stats | None,
        protocol: Protocol, kid_subset_size: int | None, dist: Dist, device: torch.device,
        options: RunOptions = RunOptions(), progress: Reporter | None = None, warn: Note,
        warnings: list[str], t0: float) -> dict[str, Any]:
    """Extract features of samples ``0..total-1`` of ``src`` (this rank's share), resuming a
    checkpoint, and return the result document (``warnings``: what was noted so far;
    ``t0``: when the evaluation started, for ``seconds``)."""
    if total < PR_K + 1 and ("precision" in protocol.metrics or "recall" in protocol.metrics):
        msg = f"precision/recall not computed: {total} samples, a k={PR_K} neighbourhood needs {PR_K + 1}"
        warnings.append(msg)
        if dist.is_main:
            warn(msg)
        protocol = replace(protocol, metrics=tuple(m for m in protocol.metrics if m not in ("precision", "recall")))
    wanted, d = protocol.metrics, dist
    bs = int(options.batch_size or default_batch_size(device, src.resolution if src.kind == "model" else None))
    lo, hi = shard(total, d)
    key = {"v": CHECKPOINT_VERSION, "source": info["identity"], "n": total, "shard": [lo, hi],
           "rank": d.rank, "world": d.world, "extractor_sha256": fx.sha256, "fid": "fid" in wanted,
           "is_splits": protocol.splits, "is_shuffle": bool(protocol.is_shuffle), "is_rule": protocol.is_rule,
           "kid": protocol.keeps_features, "sfid": "sfid" in wanted, "batch_size": bs, "device": device.type}
    if options.compile:                   # compiled floats differ from eager's in the last bits
        key["compile"] = options.compile
    t_extract = time.time()
    acc, ckpt, resumed_from = extract_resumable(
        src, fx, key=key, kind="eval", n=total, shard=(lo, hi), dist=d, device=device, resume=options.resume,
        need_fid="fid" in wanted, is_splits=protocol.splits, keep_features=protocol.keeps_features,
        is_shuffle=protocol.is_shuffle, need_sfid="sfid" in wanted, is_block=protocol.is_block(), batch_size=bs, every=options.checkpoint_every,
        progress=progress if d.rank == 0 else None, desc=f"eval {'/'.join(wanted)}",
        note=warn if d.rank == 0 and progress else None, warn=_collect(warn, warnings) if d.rank == 0 else None)
    t_extract = time.time() - t_extract

    out = numbers(acc, ref, protocol, kid_subset_size, device)
    ckpt.remove()
    seconds = time.time() - t0
    out.update(
        n=total, model=info["model"], weights=info.get("weights"), trunc=info.get("trunc"),
        trunc_convention=info.get("trunc_convention"), seed=info.get("seed"), classes=info.get("classes"),
        images=info.get("images"), ref=None if ref is None else ref.label,
        ref_extractor=None if ref is None else ref.extractor_id,
        metrics=list(wanted), extractor=EXTRACTOR, extractor_id=fx.id, inception_weights_sha256=fx.sha256,
        resolution=src.resolution,
        is_splits=(acc.isc.splits if acc.isc is not None else None),
        is_shuffle=bool(protocol.is_shuffle and not protocol.is_adm) if "is" in wanted else None,
        is_rule=protocol.is_rule,
        pr_k=PR_K if "precision" in wanted or "recall" in wanted else None,
        pr_distances=protocol.pr_distances if "precision" in wanted or "recall" in wanted else None,
        pr_reference_count=(int(len(ref.features)) if ref is not None and ref.features is not None
                            and ("precision" in wanted or "recall" in wanted) else None),
        kid_subsets=protocol.kid_subsets if "kid" in wanted else None, kid_subset_size=kid_subset_size,
        dtype=info.get("dtype"), device=str(device), world_size=d.world, batch_size=bs,
        resumed_from=resumed_from if d.world == 1 else None, seconds=round(seconds, 3),
        samples_per_second=(round((hi - lo - resumed_from) * d.world / t_extract, 3)
                            if t_extract > 0 and hi - lo > resumed_from else None),
        version=__version__, metric_version=METRIC_VERSION, warnings=warnings,
    )
    return out


def evaluate_source(src: ImageSource, info: dict[str, Any], *, n: int | None, fx: InceptionFeatures,
                    ref: Stats | None, protocol: Protocol, device: torch.device, options: RunOptions = RunOptions(),
                    force: bool = False, progress: Reporter | None = None, note: Note, warn: Note,
                    warnings: list[str], dist: Dist = Dist(), t0: float) -> dict[str, Any]:
    """THE evaluation of an opened source with a loaded extractor and reference (this rank's
    share under torchrun): ``bigganctl.evaluate``'s, and each sweep row's. The source's
    resolution is checked against the reference, KID's subset sized, the reference's
    features filled when a metric needs them (once: they stay on ``ref``), then :func:`run`.
    ``note`` records a warning in ``warnings`` (and shows it), ``warn`` only shows it."""
    total = sized(src, n, protocol)
    check_reference(ref, protocol, extractor_id=fx.id, force=force, note=note, resolution=src.resolution,
                    seen=warnings)
    subset = kid_subset(protocol.kid_subset_size, total, feature_count(ref), note) \
        if "kid" in protocol.metrics else None
    if protocol.keeps_features:
        fill_features(ref, fx, batch_size=options.batch_size or default_batch_size(device),
                      progress=progress if dist.is_main else None, dist=dist)
    return run(src, info, total=total, fx=fx, ref=ref, protocol=protocol, kid_subset_size=subset, dist=dist,
               device=device, options=options, progress=progress, warn=warn, warnings=warnings, t0=t0)


def check_gates(result: dict[str, Any], **gates: float | None) -> None:
    """Raise GateFailed (exit 3) when a quality gate (``max_fid``, ``min_is``, ``max_sfid``,
    ``min_precision``, ``min_recall``) is missed; a metric not computed (null) passes."""
    missed = [gate_text(g, v, b, ">" if upper else "<") for g, v, b, upper, ok in verdicts(result, **gates) if not ok]
    if missed:
        raise GateFailed("quality gate missed: " + "; ".join(missed))
