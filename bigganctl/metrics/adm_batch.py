"""Writing an ADM-format reference batch (``stats compute --adm-batch``; guided-diffusion#148).

The layout is what guided-diffusion's ``evaluations/evaluator.py`` reads with ``np.load``:

======================  ===========================================================
``mu``, ``sigma``       pool_3 mean (float64 [2048]) and covariance (``np.cov``, N-1)
``mu_s``, ``sigma_s``   ``mixed_6/conv`` (first 7 channels, NHWC, 2023 dims) statistics
``arr_0``               uint8 [K, H, W, 3]: a seeded subset of K (default 10k) of the images,
                        after the same preprocessing as the statistics, in source order
``bigganctl_meta``      JSON: extractor and weights, layers, count, the subset's seed, ...
======================  ===========================================================

The archive is written entry by entry (``arr_0`` batch by batch, never whole in memory),
into a temporary file renamed onto the target at the end. bigganctl reads it back as an ADM
reference batch: FID and sFID from the statistics, KID and precision/recall from the
features of ``arr_0`` (:mod:`.ref_features`).
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from .._io import atomic_path
from ..errors import RuntimeFailure
from ..progress import Reporter, task
from .reference import ADM_FORMAT, META_KEY, Stats

ADM_IMAGES = 10_000
SUBSET_SEED = 0


def subset_indices(total: int, k: int = ADM_IMAGES, seed: int = SUBSET_SEED) -> np.ndarray:
    """``min(k, total)`` distinct indices of ``0..total-1``, sorted: ``RandomState(seed)``'s
    permutation, first ``k`` (all of them, in order, when ``k >= total``)."""
    if k >= total:
        return np.arange(total, dtype=np.int64)
    return np.sort(np.random.RandomState(seed).permutation(total)[:k]).astype(np.int64)


def _images(src, idx: np.ndarray, batch_size: int):
    """The uint8 NHWC images ``idx`` (sorted) of ``src``: one file at a time from a folder,
    one sequential pass over anything else."""
    if src.kind == "folder":
        for i in range(0, len(idx), batch_size):
            chunk = [next(iter(src.batches(int(j), int(j) + 1, 1)))[1] for j in idx[i:i + batch_size]]
            yield np.concatenate([c.permute(0, 2, 3, 1).numpy() for c in chunk])
        return
    want = set(idx.tolist())
    for lo, x in src.batches(0, int(idx[-1]) + 1, batch_size):
        keep = [k for k in range(x.shape[0]) if lo + k in want]
        if keep:
            yield x[keep].permute(0, 2, 3, 1).contiguous().numpy()


def _save_array(zf: zipfile.ZipFile, name: str, arr: np.ndarray) -> None:
    with zf.open(f"{name}.npy", "w", force_zip64=True) as fh:
        np.lib.format.write_array(fh, np.asanyarray(arr), allow_pickle=False)


def write_adm_batch(path: str | os.PathLike, st: Stats, src, *, k: int = ADM_IMAGES, seed: int = SUBSET_SEED,
                    batch_size: int = 64, progress: Reporter | None = None) -> Path:
    """Write ``st`` (with ``mu_s``/``sigma_s``) and a seeded subset of ``src``'s images as an
    ADM reference batch at ``path``; ``st.meta`` gains the batch's format keys."""
    if not st.has_spatial:
        raise ValueError("an ADM reference batch needs mu_s/sigma_s")
    idx = subset_indices(int(st.meta["count"]), k, seed)
    h, w = src.size
    st.meta.update(format=ADM_FORMAT, image_count=int(len(idx)), image_subset_seed=int(seed),
                   image_subset="RandomState(seed).permutation(count)[:K], sorted",
                   layout="guided-diffusion evaluations/evaluator.py reference batch")
    p = Path(path)
    try:
        with atomic_path(p, suffix=".npz") as tmp, zipfile.ZipFile(tmp, "w", allowZip64=True) as zf:
            for name in ("mu", "sigma", "mu_s", "sigma_s"):
                _save_array(zf, name, np.asarray(getattr(st, name), np.float64))
            _save_array(zf, META_KEY, np.array(json.dumps(st.meta, sort_keys=True, default=str)))
            with zf.open("arr_0.npy", "w", force_zip64=True) as fh, \
                    task(progress, "arr_0 (reference images)", total=len(idx), unit="img") as step:
                header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False,
                          "shape": (int(len(idx)), int(h), int(w), 3)}
                np.lib.format.write_array_header_2_0(fh, header)
                done = 0
                for arr in _images(src, idx, batch_size):
                    fh.write(np.ascontiguousarray(arr, np.uint8).tobytes())
                    done += arr.shape[0]
                    step(done)
                if done != len(idx):
                    raise RuntimeFailure(f"read {done} of the {len(idx)} subset images")
    except OSError as e:
        raise RuntimeFailure(f"cannot write {p}: {e.strerror or e}") from None
    return p
