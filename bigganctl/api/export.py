"""``sample --npz / --images`` at evaluation scale: images go to disk as batches finish.

Memory stays constant in N: each process generates its contiguous share
(:func:`bigganctl.runtime.distributed.shard`) batch by batch and writes every batch straight to
its rows of the preallocated ``.npz`` (:mod:`bigganctl.media.npz_stream`) and its
``--images`` files, then records how far it got (:mod:`.export_state`). When every share
is done, rank 0 stores the archive's CRC (combined from the ranks' CRCs, nothing read
back), builds the grid when one is asked for (at most :data:`GRID_MAX` tiles, read back
from the written rows), writes the manifests and gives the files their final names.

A killed run re-run with the same arguments continues where it stopped and ends with the
same bytes: the batches are the same (a share resumes at a batch boundary) and so is every
header.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._io import stage_rename, together, write_json
from ..classes import get_class
from ..runtime.distributed import Dist, gather_objects, main_decides, shard
from ..generate import batch_size_for, iter_uint8, model_device
from ..media import npz_stream
from ..media.images import GRID_PADDING, make_grid, manifest_path, sample_filename, write_image
from ..media.manifest import reproduce_command
from ..metrics.sources import fingerprint, generator_dtype
from ..models.base import model_name
from ..progress import Reporter, task
from ..noise import Plan
from ..types import Generator, Model
from . import export_state as st

#: The most tiles a grid may have (a larger grid is refused: write --npz / --images).
GRID_MAX = 1024
#: ``--images`` disk estimate: the raw pixels plus PNG overhead (PNG rarely compresses GAN
#: samples much, so this is the bound the free-space check uses).
PNG_OVERHEAD = 1024


def sample_files(plan: Plan) -> list[str | None]:
    """The ``--images`` file of each sample (None: a repeated grid cell, written once).

    Grid: ``207_golden_retriever_seed0003.png``. Evaluation plans: the sample index first,
    ``00042_042_..._seed0042.png``, so sorted paths (how ``eval --images DIR`` and
    torch-fidelity order a folder) are the sample order."""
    out: list[str | None] = []
    if plan.kind == "grid":
        seen = set()
        for c, s in zip(plan.labels.tolist(), plan.seeds):
            out.append(None if (c, s) in seen else sample_filename(c, get_class(c).slug, s))
            seen.add((c, s))
        return out
    width = max(5, len(str(plan.n - 1)))
    return [f"{i:0{width}d}_{sample_filename(c, get_class(c).slug, s)}"
            for i, (c, s) in enumerate(zip(plan.labels.tolist(), plan.seeds))]


def job_key(G: Generator, model: Model, plan: Plan, psi: float, batch_size: int, d: Dist) -> dict[str, Any]:
    """Everything that decides the bytes of the outputs (see :mod:`.export_state`)."""
    labels = np.ascontiguousarray(plan.labels.numpy(), dtype="<i8")
    seeds = np.asarray(plan.seeds, dtype="<u8")
    return {"model": model_name(G) if model is None else str(model), "weights": fingerprint(G),
            "plan": plan.kind, "seed": plan.seed, "n": plan.n, "psi": float(psi),
            "labels_sha256": _sha(labels.tobytes()), "seeds_sha256": _sha(seeds.tobytes()),
            "resolution": int(G.resolution), "dtype": generator_dtype(G, "fp32"),
            "device": model_device(G).type, "world": d.world, "batch_size": int(batch_size),
            "compile": getattr(G, "compile_mode", None)}        # compiled floats differ from eager's


def _sha(b: bytes) -> str:
    import hashlib

    return hashlib.sha256(b).hexdigest()


def disk_need(layout: npz_stream.NpzLayout, npz: bool, files: list[str | None]) -> int:
    png = sum(1 for f in files if f) * (layout.row + layout.height + PNG_OVERHEAD)
    return (layout.size if npz else 0) + png


def export(G, plan: Plan, outputs, *, manifest: dict[str, Any], psi: float, batch_size: int | None = None,
           dist: Dist = Dist(), resume: bool = True, progress: Reporter | None = None,
           command: str | None = None) -> dict[str, Any] | None:
    """Generate ``plan`` into ``outputs`` (a :class:`~bigganctl.api.sample.SampleOutputs`
    with ``npz`` and/or ``images_dir``); every rank calls it, rank 0 returns the document
    (``outputs``, ``manifest``, ``count``, ``bytes``, ``seconds``, ...), the others None."""
    t0 = time.time()
    d, n = dist, plan.n
    layout = npz_stream.NpzLayout(n, int(G.resolution), int(G.resolution))
    paths = st.StagePaths(outputs.npz, outputs.images_dir)
    files = sample_files(plan) if outputs.images_dir is not None else []
    bs = batch_size_for(G, batch_size)
    key = job_key(G, manifest.get("model"), plan, psi, bs, d)
    kd = st.digest(key)
    lo, hi = shard(n, d)
    mode = main_decides(lambda: st.prepare(paths, key, resume=resume, layout=layout, labels=plan.labels,
                                           need=disk_need(layout, outputs.npz is not None, files)),
                        d, what="preparing the outputs")
    done, crc = (st.resume_point(paths, kd, rank=d.rank, lo=lo, hi=hi, layout=layout, files=files)
                 if mode == "resume" else (0, 0))
    t_gen = time.time()
    with task(progress, "sampling", total=n, initial=min(n, done * d.world), unit="img") as step:
        crc = _generate(G, plan, psi, bs, paths, files, layout, kd, d, (lo, hi), done, crc,
                        lambda k: step(min(n, k * d.world)))
    t_gen = time.time() - t_gen
    shares = gather_objects((lo, hi, crc, done), d, what="collecting the shares")
    if not d.is_main:
        return None
    doc = _finish(G, plan, outputs, paths, files, layout, shares, manifest, command)
    resumed = sum(s[3] for s in shares)
    doc.update(count=n, resumed_from=resumed, seconds=round(time.time() - t0, 3),
               images_per_second=round((n - resumed) / t_gen, 3) if t_gen > 0 and n > resumed else None)
    return doc


def _generate(G, plan: Plan, psi: float, bs: int, paths: st.StagePaths, files: list[str | None],
              layout: npz_stream.NpzLayout, kd: str, d: Dist, share: tuple[int, int], done: int, crc: int,
              step) -> int:
    """Samples ``lo + done .. hi - 1`` to disk; a state record after every batch."""
    lo, hi = share
    fd = os.open(paths.part, os.O_RDWR) if paths.part is not None else None
    try:
        for off, x in iter_uint8(G, plan.labels[lo:hi], plan.seeds[lo:hi], psi, batch_size=bs, start=done):
            first = lo + off
            if fd is not None:
                crc = npz_stream.write_rows(fd, layout, first, x.permute(0, 2, 3, 1).numpy(), crc=crc)
                os.fsync(fd)
            for k in range(x.shape[0]):
                name = files[first + k] if files else None
                if name:
                    write_image(paths.stage / name, x[k])
            done = off + x.shape[0]
            st.save_point(paths, kd, rank=d.rank, lo=lo, hi=hi, done=done, crc=crc)
            step(done)
    finally:
        if fd is not None:
            os.close(fd)
    return crc


def _finish(G, plan: Plan, outputs, paths: st.StagePaths, files: list[str | None], layout: npz_stream.NpzLayout,
            shares: list, manifest: dict[str, Any], command: str | None) -> dict[str, Any]:
    """Rank 0, every share done: CRC, grid, manifests, final names, records removed."""
    manifest = {**manifest, "command": command, "reproduce": reproduce_command(manifest)}
    out_paths = {k: str(p) for k, p in (("grid", outputs.grid), ("npz", outputs.npz), ("images", outputs.images_dir))
                 if p is not None}
    manifest["outputs"] = out_paths
    written: dict[str, Any] = dict(out_paths)
    sizes: dict[str, int] = {}
    if paths.part is not None:
        total, length = 0, 0
        for lo, hi, crc, _done in shares:
            total = npz_stream.crc32_combine(total, crc, (hi - lo) * layout.row) if length else crc
            length += (hi - lo) * layout.row
        npz_stream.finalize(paths.part, layout, total)
    with together():          # every write first (a full disk fails here), then every rename
        _publish(plan, outputs, paths, files, layout, manifest, written, sizes)
    if outputs.grid is not None:
        sizes["grid"] = outputs.grid.stat().st_size
    paths.discard()
    return {"outputs": written, "manifest": manifest, "bytes": sizes}


def _publish(plan: Plan, outputs: Any, paths: st.StagePaths, files: list[str | None], layout: Any,
             manifest: dict[str, Any], written: dict[str, Any], sizes: dict[str, int]) -> None:
    if outputs.grid is not None:
        nrow = outputs.nrow or _default_nrow(plan, manifest)
        images = _read_back(plan, paths, files, layout)
        grid = make_grid(images, nrow)
        write_image(outputs.grid, grid)
        info = {"nrow": nrow, "rows": -(-plan.n // nrow), "tile": layout.height, "padding": GRID_PADDING,
                "size": [int(grid.shape[2]), int(grid.shape[1])]}
        write_json(manifest_path(outputs.grid), {**manifest, "grid": info})
        written["grid_manifest"] = str(manifest_path(outputs.grid))
    if paths.part is not None:
        write_json(manifest_path(outputs.npz), {**manifest, "npz": {"arr_0": "uint8 [N, H, W, 3] (NHWC)",
                                                                    "arr_1": "int64 [N] labels"}})
        sizes["npz"] = paths.part.stat().st_size
        stage_rename(paths.part, outputs.npz)
        written["npz_manifest"] = str(manifest_path(outputs.npz))
    if paths.stage is not None:
        sizes["images"] = _move_images(plan, paths, files, outputs.images_dir, manifest)
        written["images_manifest"] = str(outputs.images_dir / "manifest.json")


def _move_images(plan: Plan, paths: st.StagePaths, files: list[str | None], folder: Path,
                 manifest: dict[str, Any]) -> int:
    entries, size = [], 0
    for name, c, s in zip(files, plan.labels.tolist(), plan.seeds):
        if name:
            size += (paths.stage / name).stat().st_size
            stage_rename(paths.stage / name, folder / name)
            entries.append({"file": name, "class": c, "seed": s})
    write_json(folder / "manifest.json", {**manifest, "files": entries})
    return size


def _default_nrow(plan: Plan, manifest: dict[str, Any]) -> int:
    if plan.kind == "grid":
        return len(manifest["seeds"])
    return max(1, int(np.ceil(np.sqrt(plan.n))))


def _read_back(plan: Plan, paths: st.StagePaths, files: list[str | None], layout: npz_stream.NpzLayout) -> torch.Tensor:
    """The (at most GRID_MAX) images, from the written rows or the staged files."""
    if paths.part is not None:
        with open(paths.part, "rb") as fh:
            fh.seek(layout.data)
            arr = np.frombuffer(fh.read(plan.n * layout.row), dtype=np.uint8)
        return torch.from_numpy(arr.reshape(plan.n, layout.height, layout.width, 3).copy()).permute(0, 3, 1, 2)
    from PIL import Image

    first: dict[tuple[int, int], str] = {}
    for name, c, s in zip(files, plan.labels.tolist(), plan.seeds):
        if name:
            first[(c, s)] = name
    out = []
    for c, s in zip(plan.labels.tolist(), plan.seeds):
        with Image.open(paths.stage / first[(c, s)]) as im:
            out.append(torch.from_numpy(np.asarray(im.convert("RGB")).copy()).permute(2, 0, 1))
    return torch.stack(out)
