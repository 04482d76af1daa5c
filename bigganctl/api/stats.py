"""``bigganctl.compute_stats()``: reference statistics of real images (``stats compute``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .._io import check_writable_target
from ..runtime.compiling import resolve_compile
from ..checks import check_int
from ..errors import UsageError
from ..runtime.distributed import main_decides, session, shard
from ..metrics.adm_batch import ADM_IMAGES, SUBSET_SEED, write_adm_batch
from ..metrics.extract import CHECKPOINT_VERSION, extract_resumable
from ..metrics.features import SPATIAL_DIM, SPATIAL_LAYER, SPATIAL_MODULE, InceptionFeatures, resolve_weights
from ..metrics.ref_features import fill_features
from ..metrics.reference import Stats, load_reference, stats_meta, write_stats
from ..metrics.sources import Preprocess, open_images
from ..progress import ProgressArg, Reporter
from ..runtime.device import default_batch_size, resolve_device
from ..progress import as_reporter
from ..types import Compile, Device


def compute_stats(source: str | os.PathLike, out: str | os.PathLike | None = None, *,
                  resize: int | None = None, center_crop: int | None = None, n: int | None = None,
                  keep_features: bool = False, inception_weights: str | os.PathLike | None = None,
                  device: str = "auto", batch_size: int | None = None, overwrite: bool = False,
                  workers: int = 0, resume: bool = True, progress: ProgressArg = True,
                  compile: Compile = False, adm_batch: bool = False, adm_images: int = ADM_IMAGES,
                  adm_seed: int = SUBSET_SEED) -> Stats:
    """Reference statistics of an image folder or an image ``.npz``; written to ``out`` if given.

    ``resize=R``: torch-fidelity's resize-and-center-crop; ``center_crop=R``: ADM's
    ImageNet preparation (box-halving, bicubic, centre crop); see
    :mod:`bigganctl.metrics.sources`. ``keep_features`` stores the [N, 2048] features too
    (needed for KID against it). sFID's ``mu_s``/``sigma_s`` are always recorded.
    ``adm_batch``: write ``out`` as an ADM reference batch instead (``mu``, ``sigma``, ``mu_s``,
    ``sigma_s`` and ``arr_0``, ``adm_images`` of the images drawn with ``adm_seed``;
    :mod:`bigganctl.metrics.adm_batch`). ``workers``: processes that decode and resize a folder's
    images (0: in this process). ``resume``: continue from the checkpoint an interrupted
    run left. ``progress``: True (tqdm bars), False, ``fn(done, total)`` or a reporter. ``compile``:
    True or a torch.compile mode, the Inception extractor runs compiled. Under torchrun
    each process reads its contiguous share and every process returns the statistics
    (rank 0 writes ``out``).

    >>> st = compute_stats("imagenet_val_128/", "val128.npz", center_crop=128)   # doctest: +SKIP
    """
    mode = resolve_compile(compile)
    check_int(workers, "workers", minimum=0)
    check_int(adm_images, "adm_images")
    if adm_batch and out is None:
        raise UsageError("an ADM reference batch is a file: it needs out (--out FILE.npz)", param="adm_batch")
    resolve_device(device)
    with session(device) as (d, dev):
        if out is not None:
            main_decides(lambda: _check_out(out, overwrite), d, what="checking --out")
        shown = as_reporter(progress) if d.is_main else None
        src = open_images(source, Preprocess(resize=resize, center_crop=center_crop), option="source",
                          workers=workers)
        total = src.n if n is None else int(n)
        if src.n < 2:
            raise UsageError(f"{src.describe()} holds {src.n} image; statistics need at least 2 (a covariance)",
                             param="source")
        if total < 2 or total > src.n:
            raise UsageError(f"needs 2 <= N <= {src.n} images, got {total}", param="n")
        fx = InceptionFeatures(resolve_weights(inception_weights, progress=shown), device=dev, compile=mode)
        fx.reverify()                 # a reference records the extractor for good: never from a stale memo
        bs = batch_size or default_batch_size(dev)
        lo, hi = shard(total, d)
        key = {"v": CHECKPOINT_VERSION, "kind": "stats", "source": src.identity(), "n": total, "shard": [lo, hi],
               "rank": d.rank, "world": d.world, "extractor_sha256": fx.sha256, "keep_features": keep_features,
               "batch_size": bs, "device": dev.type, "compile": mode}
        acc, ckpt, _ = extract_resumable(src, fx, key=key, kind="stats", n=total, shard=(lo, hi), dist=d,
                                         device=dev, resume=resume, need_fid=True, is_splits=None,
                                         keep_features=keep_features, need_sfid=True, batch_size=bs,
                                         progress=shown, desc="stats")
        mu, sigma = acc.fid.mean_cov()
        meta = stats_meta(extractor=fx.describe(), count=total, resolution=src.resolution,
                          preprocessing=src.pre.describe(), source=str(Path(source).resolve()),
                          has_features=keep_features, source_kind=src.kind, spatial_layer=SPATIAL_LAYER,
                          spatial_module=SPATIAL_MODULE, spatial_dim=SPATIAL_DIM)
        stats = Stats(mu, sigma, acc.features() if keep_features else None, meta, *acc.sfid.mean_cov())
        if out is not None and d.is_main:
            if adm_batch:
                write_adm_batch(out, stats, src, k=adm_images, seed=adm_seed, batch_size=bs, progress=shown)
            else:
                write_stats(out, stats)
        ckpt.remove()
    return stats


def _check_out(out: str | os.PathLike, overwrite: bool) -> None:
    check_writable_target(out, overwrite=overwrite, option="out")
    if Path(out).suffix.lower() != ".npz":
        raise UsageError(f"{out}: statistics are written as .npz", param="out")


def reference_features(name: str, *, inception_weights: str | os.PathLike | None, device: Device,
                       batch_size: int | None, progress: Reporter | None) -> dict[str, Any]:
    """``stats pull NAME --features``: KID's features of a registered ADM reference, computed
    with these Inception weights and cached (:mod:`bigganctl.metrics.ref_features`)."""
    ref = load_reference(name, progress=progress)
    dev = resolve_device(device)
    fx = InceptionFeatures(resolve_weights(inception_weights, progress=progress), device=dev)
    path = fill_features(ref, fx, batch_size=batch_size or default_batch_size(dev), progress=progress)
    return {"features": str(path), "count": int(ref.features.shape[0]), "extractor_id": fx.id}
