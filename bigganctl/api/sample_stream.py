"""``bigganctl sample --npz / --images``: the checks, the model and the plan, then
:func:`bigganctl.api.export.export` (streamed to disk, resumable, sharded under torchrun)."""

from __future__ import annotations

from pathlib import Path

import torch

from ..runtime.distributed import Dist, main_decides
from ..errors import UsageError
from ..media.manifest import plan_manifest, sample_manifest
from ..progress import Reporter
from ..noise import eval_plan, grid_plan
from ..types import Compile, Model
from ._shared import open_for_psi
from . import sample as core
from .export import export, sample_files

IMAGENET = 1000


def run(*, model: Model, weights: str | None, device: torch.device, dtype: torch.dtype, compile: Compile,
        plan: str | None,
        infos: list, cols: list[int], seed: int, psi: float, out: Path | None, images: Path | None,
        npz: Path | None, nrow: int | None, grid: bool, overwrite: bool, resume: bool,
        batch_size: int | None, progress: Reporter | None, command: str | None, dist: Dist) -> dict | None:
    """Every rank calls it; rank 0 gets the result document, the others None."""
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
