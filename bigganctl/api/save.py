"""``bigganctl.save_samples()``: the samples ``bigganctl sample`` writes (the command calls it).

::

    doc = bigganctl.save_samples(classes=[207, "goldfish"], n=4, psi=0.5, out="grid.png")
    doc = bigganctl.save_samples(classes="balanced", n=50000, psi=1.0, npz="samples50k.npz")

A grid alone is generated in memory (:func:`bigganctl.sample`) and written with its
manifest; ``images`` (a PNG per sample) and ``npz`` (an ADM batch) are written as batches
finish by :func:`bigganctl.api.export.export`: constant memory, resumable after a kill,
each torchrun process its own share.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from ..errors import UsageError

from ..media.manifest import plan_manifest, sample_manifest
from ..models.base import model_name
from ..noise import eval_plan, grid_plan
from ..progress import ProgressArg, Reporter, as_reporter
from ..runtime.device import resolve_device, resolve_dtype
from ..runtime.distributed import Dist, main_decides, session
from ..types import Classes, Compile, Device, Dtype, Model
from . import sample as core
from ._shared import open_for_psi
from .export import GRID_MAX, export, sample_files

IMAGENET = 1000
PathArg = str | os.PathLike | None


def save_samples(model: Model = "biggan-deep-128", classes: Classes = core.DEFAULT_CLASSES, n: int | None = None,
                 seed: int = 0, seeds: str | list[int] | None = None, psi: float = 1.0, *, out: PathArg = None,
                 images: PathArg = None, npz: PathArg = None, nrow: int | None = None, grid: bool | None = None,
                 weights: str | None = None, device: Device = "auto", dtype: Dtype = "fp32",
                 batch_size: int | None = None, resume: bool = True, overwrite: bool = False,
                 progress: ProgressArg = None, compile: Compile = False,
                 command: str | None = None) -> dict[str, Any] | None:
    """Write samples: a grid image (``out``), a PNG per sample (``images``, a folder) and/or
    an ADM ``.npz`` batch (``npz``), each with a JSON manifest; returns the result document
    (``outputs``, ``manifest``, ``count``, ``bytes``, ``seconds``, ...). Under torchrun every
    process calls it; rank 0 gets the document, the others None.

    ``classes`` and ``n``/``seed``/``seeds`` as :func:`bigganctl.sample` (a grid's classes x
    seeds, or ``"balanced"``/``"random"``: an evaluation plan). ``grid``: None writes the
    grid up to ``GRID_MAX`` images (none beyond when ``images`` or ``npz`` is given);
    ``out`` defaults to ``samples/MODEL_CLASSES_psiPSI_seedsRANGE.png``. Existing files
    are kept unless ``overwrite``; ``resume`` continues a killed run of the same call.
    """
    plan, infos, cols = core.sample_inputs(classes, n, seed, seeds)
    total = len(cols) * (1 if plan else len(infos))
    grid = grid_choice(grid, out, total, streamed=npz is not None or images is not None)
    if grid and out is None:
        name = model_name(model, model)          # a name, a folder, a loaded generator or a spec
        out = (Path("samples") / f"{Path(name).name}_{plan}_psi{psi:g}_seed{seed}_n{total}.png" if plan
               else core.default_out(name, infos, cols, psi))
    resolve_device(device)
    dt = resolve_dtype(dtype)
    with session(device) as (d, dev):            # torchrun: one share per process
        shown = as_reporter(progress) if d.is_main else None
        if npz is None and images is None:       # a grid alone: in memory, rank 0 writes it
            return _grid_alone(model, weights, dev, dt, compile, plan, infos, cols, seed, psi, out, nrow, overwrite,
                               batch_size, shown, command, d)
        return _streamed(model=model, weights=weights, device=dev, dtype=dt, compile=compile, plan=plan,
                         infos=infos, cols=cols, seed=seed, psi=psi, out=out, images=images, npz=npz, nrow=nrow,
                         grid=grid, overwrite=overwrite, resume=resume, batch_size=batch_size, progress=shown,
                         command=command, dist=d)


def grid_choice(grid: bool | None, out: PathArg, total: int, *, streamed: bool) -> bool:
    """The grid is the default up to GRID_MAX images; beyond, it is left out when ``images``
    or ``npz`` is given and refused when asked for (a grid of 50,000 tiles is no picture)."""
    asked = grid is True or (grid is None and out is not None)
    if grid is False:
        return False
    if total <= GRID_MAX:
        return True
    if asked:
        raise UsageError(f"a grid of {total} images is too large (at most {GRID_MAX})",
                         param="out" if out is not None else "grid",
                         hint="pass --no-grid and write the samples with --npz FILE or --images DIR")
    if not streamed:
        raise UsageError(f"{total} images are too many for a grid (at most {GRID_MAX}) and nothing else is "
                         "asked for", param="n", hint="add --npz FILE.npz or --images DIR")
    return False


def _grid_alone(model, weights, dev, dt, compile, plan, infos, cols, seed, psi, out, nrow, overwrite,
                batch_size, shown, command, d) -> dict | None:
    t0 = time.time()
    total = len(cols) * (1 if plan else len(infos))
    outputs = main_decides(lambda: core.plan_outputs(
        out=out, images_dir=None, npz=None, classes=infos, seeds=cols, nrow=nrow, grid=True,
        overwrite=overwrite), d, what="checking the outputs")
    result = core.sample(model=model, classes=plan or infos, n=total if plan else None, seed=seed,
                         seeds=None if plan else cols, psi=psi, weights=weights, device=dev, dtype=dt,
                         batch_size=batch_size, progress=shown, dist=d, compile=compile)
    if not d.is_main:
        return None
    doc = core.write_outputs(outputs, result, command=command)
    doc.update(count=total, bytes={"grid": Path(doc["outputs"]["grid"]).stat().st_size},
               resumed_from=0, seconds=round(time.time() - t0, 3), images_per_second=None)
    return doc


def _streamed(*, model: Model, weights: str | None, device, dtype, compile: Compile, plan: str | None,
              infos: list, cols: list[int], seed: int, psi: float, out: PathArg, images: PathArg, npz: PathArg,
              nrow: int | None, grid: bool, overwrite: bool, resume: bool, batch_size: int | None,
              progress: Reporter | None, command: str | None, dist: Dist) -> dict | None:
    """``images`` / ``npz``: every rank calls it; rank 0 gets the result document, the others None."""
    d = dist
    the_plan = (eval_plan(plan, len(cols), seed, IMAGENET) if plan      # ImageNet's 1000 classes
                else grid_plan([c.index for c in infos], cols))
    files = sample_files(the_plan) if images is not None else None
    outputs = main_decides(lambda: core.plan_outputs(
        out=out, images_dir=images, npz=npz, classes=infos, seeds=cols, nrow=nrow, grid=grid,
        overwrite=overwrite, files=files), d, what="checking the outputs")
    G, psi = open_for_psi(model, psi, weights, device, dtype, progress=progress, compile=compile)
    if G.num_classes != IMAGENET:
        raise UsageError(f"the model has {G.num_classes} classes; ImageNet needs {IMAGENET}", param="model")
    manifest = (plan_manifest(G, model, the_plan, psi) if plan
                else sample_manifest(G, model, infos, cols, psi))
    manifest["plan"] = manifest.get("plan") or the_plan.describe(int(G.num_classes))
    return export(G, the_plan, outputs, manifest=manifest, psi=psi, batch_size=batch_size, dist=d,
                  resume=resume, progress=progress, command=command)
