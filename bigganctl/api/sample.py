"""``bigganctl.sample()``: class-conditional truncated sampling (classes x seeds -> uint8
images and a manifest), and the files ``bigganctl sample`` writes.

The pixels come from exactly two public calls, so any image can be rebuilt from its
manifest::

    z = bigganctl.truncated_noise([seed], G.z_dim, psi, G.truncation)
    x = G(z, torch.tensor([class_index]), psi)          # then bigganctl.to_uint8(x)

Images are ordered class-major then seed: with classes (a, b) and seeds (0, 1) the order
is (a, 0), (a, 1), (b, 0), (b, 1); rows of different classes share their noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .._io import together, write_json
from ..classes import ClassInfo, resolve_classes
from ..checks import check_int
from ..errors import RuntimeFailure, UsageError
from ..runtime.distributed import Dist, gather_rows, shard
from ..generate import iter_uint8, model_device
from ..media.images import (GRID_PADDING, OutputPlan, check_npz_path, default_sample_path, image_format,
                            make_grid, manifest_path, sample_filename, write_image, write_npz)
from ..media.manifest import plan_manifest, reproduce_command, sample_manifest
from ..runtime.device import check_memory
from ..noise import DEFAULT_N, EVAL_PLANS, eval_plan, grid_plan, resolve_seeds
from ._shared import open_for_psi
from ..progress import ProgressArg, Step, as_reporter, task
from ..types import Classes, Compile, Model

__all__ = ["DEFAULT_N", "DEFAULT_CLASSES", "SampleResult", "sample", "resolve_seeds", "plan_outputs",
           "write_outputs", "default_out", "reproduce_command"]

#: Used when no class is given: golden retriever, goldfish, volcano, cheeseburger.
DEFAULT_CLASSES = (207, 1, 980, 933)

default_out = default_sample_path


@dataclass
class SampleResult:
    """What :func:`sample` returns. ``images`` uint8 [B, 3, R, R] on the CPU, class-major."""

    images: torch.Tensor
    labels: torch.Tensor                 # int64 [B]
    seeds: list[int]                     # [B], per sample
    classes: list[ClassInfo]             # one per row (class), in order
    columns: list[int]                   # the seeds of one row
    manifest: dict[str, Any] = field(default_factory=dict)

    def grid(self, nrow: int | None = None) -> torch.Tensor:
        """The images tiled as uint8 [3, H, W], ``nrow`` per row (default: one row per class)."""
        return make_grid(self.images, nrow or len(self.columns))


def sample(model: Model = "biggan-deep-128", classes: Classes = DEFAULT_CLASSES, n: int | None = None,
           seed: int = 0, seeds: Sequence[int] | str | None = None, psi: float = 1.0,
           weights: str | None = None, device: str = "auto", dtype: str = "fp32",
           batch_size: int | None = None, progress: ProgressArg = None,
           dist: Dist | None = None, compile: Compile = False) -> SampleResult:
    """Generate ``len(classes) x len(seeds)`` images, class-major, in memory.

    ``model`` is a registered name, a model folder, or an already loaded
    :class:`bigganctl.models.base.Generator` (then ``weights``, ``device`` and ``dtype`` are
    ignored). ``n`` seeds from ``seed`` (default 8), or explicit ``seeds``. ``psi`` follows
    the model's truncation convention (DeepMind models: (0, 1]). ``progress``: True (tqdm
    bars), ``fn(done, total)`` after every batch, or a reporter (downloads too). ``compile``: True or a torch.compile mode (``default``,
    ``reduce-overhead``, ``max-autotune``): the generator runs compiled.

    ``classes="balanced"`` or ``"random"``: the evaluation plans instead of a grid, ``n``
    samples as ``eval`` generates them (sample ``i``: seed ``seed + i``, the ``i``-th class
    of :func:`bigganctl.noise.class_plan`). For many samples write them to disk instead
    (``bigganctl sample --npz``, constant memory).

    Under torchrun, pass ``dist`` (:func:`bigganctl.runtime.distributed.session`): each process
    generates its contiguous share and rank 0 receives every image; the other ranks get a
    result without images (``images`` has 0 rows).
    """
    is_plan = isinstance(classes, str) and classes.strip().lower() in EVAL_PLANS
    if is_plan and seeds is not None:
        raise UsageError("the evaluation plans take n and seed, not seeds", param="seeds")
    infos = [] if is_plan else resolve_classes(classes)
    cols = resolve_seeds(n, seed, seeds)
    check_int(batch_size, "batch_size", optional=True)
    shown = as_reporter(progress)
    G, psi = open_for_psi(model, psi, weights, device, dtype, progress=shown, compile=compile)
    if G.num_classes < 1000:
        raise UsageError(f"the model has {G.num_classes} classes; ImageNet needs 1000", param="model")
    plan = (eval_plan(classes, len(cols), seed, G.num_classes) if is_plan
            else grid_plan([c.index for c in infos], cols))
    check_memory(len(plan.seeds) * 3 * G.resolution ** 2, what=f"{len(plan.seeds)} images at {G.resolution} px",
                 param="seeds" if seeds is not None else "n",
                 hint="write them with --npz (streamed), or split the seeds over several runs (--seeds a-b)")
    with task(shown, "sampling", total=len(plan.seeds), unit="img") as step:
        images = generate_images(G, plan.labels, plan.seeds, psi, batch_size=batch_size, progress=step,
                                 dist=dist or Dist())
    manifest = plan_manifest(G, model, plan, psi) if is_plan else sample_manifest(G, model, infos, cols, psi)
    columns = cols if not is_plan else cols[:max(1, math.isqrt(len(cols) - 1) + 1)]
    return SampleResult(images, plan.labels, list(plan.seeds), infos, columns, manifest)


def generate_images(G, labels: torch.Tensor, seeds: Sequence[int], psi: float, *, batch_size: int | None,
                    progress: Step, dist: Dist) -> torch.Tensor:
    """uint8 [N, 3, R, R]: this rank's share generated here, every share gathered on rank 0
    (other ranks: 0 rows). ``progress(done)`` hears this rank's share scaled to the whole."""
    total = len(seeds)
    lo, hi = shard(total, dist)
    try:
        images = torch.empty(hi - lo, 3, G.resolution, G.resolution, dtype=torch.uint8)
    except RuntimeError as e:   # the allocator's out-of-memory
        raise RuntimeFailure(f"cannot hold {hi - lo} images in memory: {e}") from None
    for off, batch in iter_uint8(G, labels[lo:hi], seeds[lo:hi], psi, batch_size=batch_size):
        images[off:off + batch.shape[0]] = batch
        progress(min(total, (off + batch.shape[0]) * dist.world))
    if not dist.active:
        return images
    gathered = gather_rows(images, total, dist, model_device(G), what="the gather of the images")
    return gathered if gathered is not None else images[:0]


# ---------------------------------------------------------------- outputs

@dataclass
class SampleOutputs:
    """The files one ``sample`` run writes; built (and checked) before generating."""

    grid: Path | None
    images_dir: Path | None
    npz: Path | None
    nrow: int | None
    classes: list[ClassInfo]
    seeds: list[int]
    plan: OutputPlan

    def per_sample_files(self) -> list[tuple[Path, int, ClassInfo, int]]:
        """(path, image index, class, seed) for ``--images``; a repeated (class, seed)
        pair is the same image and is written once."""
        if self.images_dir is None:
            return []
        out, seen = [], set()
        for r, c in enumerate(self.classes):
            for k, s in enumerate(self.seeds):
                if (c.index, s) not in seen:
                    seen.add((c.index, s))
                    out.append((self.images_dir / sample_filename(c.index, c.slug, s), r * len(self.seeds) + k, c, s))
        return out


def plan_outputs(*, out: str | Path | None, images_dir: str | Path | None, npz: str | Path | None,
                 classes: Sequence[ClassInfo], seeds: Sequence[int], nrow: int | None = None,
                 grid: bool = True, overwrite: bool = False,
                 files: Sequence[str | None] | None = None) -> SampleOutputs:
    """Validate every output before any work: extensions (exit 2), existing files unless
    ``overwrite`` (exit 2), folders that cannot be created (exit 1). ``files``: the
    ``--images`` file names when they are not the grid's (an evaluation plan's)."""
    check_int(nrow, "nrow", optional=True)
    grid_path = Path(out) if grid and out is not None else None
    if out is not None and not grid:
        raise UsageError("--out names the grid; drop it or drop --no-grid", param="out")
    if grid_path is not None:
        image_format(grid_path, option="out")
    npz_path = check_npz_path(npz) if npz is not None else None
    img_dir = Path(images_dir) if images_dir is not None else None
    if img_dir is not None and img_dir.exists() and not img_dir.is_dir():
        raise UsageError(f"{img_dir} exists and is not a folder", param="images")
    if grid_path is None and npz_path is None and img_dir is None:
        raise UsageError("nothing to write: --no-grid needs --images or --npz", param="out")
    outputs = SampleOutputs(grid_path, img_dir, npz_path, nrow, list(classes), list(seeds), OutputPlan([]))
    targets: list[tuple[Path, str]] = []
    for path, option in ((grid_path, "out"), (npz_path, "npz")):
        if path is not None:
            targets += [(path, option), (manifest_path(path), option)]
    if img_dir is not None:
        names = [p.name for p, *_ in outputs.per_sample_files()] if files is None else [f for f in files if f]
        targets += [(img_dir / f, "images") for f in names]
        targets.append((img_dir / "manifest.json", "images"))
    outputs.plan = OutputPlan.check(targets, overwrite=overwrite)
    return outputs


def write_outputs(outputs: SampleOutputs, result: SampleResult, *,
                  command: str | None = None) -> dict[str, Any]:
    """Write the planned files and a manifest beside each, all together or none (a failure
    leaves no file behind); returns ``{kind: path}`` plus the manifest (with ``command``
    and ``outputs`` added)."""
    with together():
        return _write_outputs(outputs, result, command)


def _write_outputs(outputs: SampleOutputs, result: SampleResult, command: str | None) -> dict[str, Any]:
    manifest = dict(result.manifest)
    manifest["command"] = command
    manifest["reproduce"] = reproduce_command(manifest)
    paths: dict[str, Any] = {}
    if outputs.grid is not None:
        paths["grid"] = str(outputs.grid)
    if outputs.npz is not None:
        paths["npz"] = str(outputs.npz)
    if outputs.images_dir is not None:
        paths["images"] = str(outputs.images_dir)
    manifest["outputs"] = paths

    written: dict[str, Any] = dict(paths)
    if outputs.grid is not None:
        nrow = outputs.nrow or len(result.columns)
        grid = make_grid(result.images, nrow)
        write_image(outputs.grid, grid)
        m = manifest_path(outputs.grid)
        write_json(m, {**manifest, "grid": _grid_info(result, nrow, grid)})
        written["grid_manifest"] = str(m)
    if outputs.npz is not None:
        write_npz(outputs.npz, result.images, result.labels)
        m = manifest_path(outputs.npz)
        write_json(m, {**manifest, "npz": {"arr_0": "uint8 [N, H, W, 3] (NHWC)", "arr_1": "int64 [N] labels"}})
        written["npz_manifest"] = str(m)
    if outputs.images_dir is not None:
        files = []
        for path, i, c, s in outputs.per_sample_files():
            write_image(path, result.images[i])
            files.append({"file": path.name, "class": c.index, "seed": s})
        m = outputs.images_dir / "manifest.json"
        write_json(m, {**manifest, "files": files})
        written["images_manifest"] = str(m)
    return {"outputs": written, "manifest": manifest}


def _grid_info(result: SampleResult, nrow: int, grid: torch.Tensor) -> dict[str, Any]:
    n = result.images.shape[0]
    return {"nrow": nrow, "rows": math.ceil(n / nrow), "tile": int(result.images.shape[-1]),
            "padding": GRID_PADDING, "size": [int(grid.shape[2]), int(grid.shape[1])]}
