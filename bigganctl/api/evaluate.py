"""``bigganctl.evaluate()``: FID / IS / KID / sFID / precision / recall of a generator or of images.

::

    res = bigganctl.evaluate(model="biggan-deep-128", metrics=("fid", "is"), n=50000,
                             psi=1.0, ref="imagenet-128")
    res["fid"], res["is_mean"]

The public arguments become explicit inputs once, here: a :class:`Generated` or an
:class:`Images` subject, a :class:`~bigganctl.metrics.evaluation.Protocol`, the loaded
extractor and reference; :func:`bigganctl.metrics.evaluation.run` does the rest. Under
``torchrun`` each process evaluates its share and every process returns the result.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch

from ..runtime.compiling import resolve_compile
from ..checks import check_int
from ..errors import UsageError
from ..metrics import maths as S
from ..metrics.evaluation import (DEFAULT_N, Protocol, RunOptions, check_n, check_reference, generator_source,
                                  evaluate_source, images_info, kid_if_available, kid_plan, normalize_metrics,
                                  optional_metrics)
from ..runtime.distributed import is_main, session
from ..metrics.features import InceptionFeatures, extractor_id, resolve_weights, weights_sha256
from ..metrics.reference import load_reference
from ..metrics.sources import Preprocess, open_images
from ..progress import ProgressArg, Reporter, as_reporter
from ..runtime.device import dtype_name, resolve_dtype
from ._shared import open_generator
from ..types import Classes, Compile, Device, Dtype, Model


@dataclass(frozen=True)
class Images:
    """Evaluate these images: a folder or an ``.npz`` batch (optionally resized / cropped)."""

    path: str | os.PathLike
    resize: int | None = None
    center_crop: int | None = None

    def open(self, *, n: int | None, dtype: Dtype, device: torch.device, progress: Reporter | None,
             compile: str | None = None):
        src = open_images(self.path, Preprocess(resize=self.resize, center_crop=self.center_crop),
                          option="images")
        return src, images_info(src, self.path)


@dataclass(frozen=True)
class Generated:
    """Evaluate ``n`` samples of a generator (a name, a folder or a loaded Generator)."""

    model: Model = "biggan-deep-128"
    weights: str | None = None
    psi: float = 1.0
    seed: int = 0
    classes: Classes = "balanced"

    def open(self, *, n: int | None, dtype: Dtype, device: torch.device, progress: Reporter | None,
             compile: str | None = None):
        G = open_generator(self.model, self.weights, device, dtype, progress=progress, compile=compile)
        return generator_source(G, n=DEFAULT_N if n is None else int(n), psi=self.psi, seed=self.seed,
                                classes=self.classes, dtype=dtype_name(resolve_dtype(dtype)))


def subject(*, model: Model | None = None, weights: str | None = None, images: Any = None, resize: int | None = None,
            center_crop: int | None = None, psi: float = 1.0, seed: int = 0,
            classes: Classes = "balanced") -> Images | Generated:
    """What is evaluated, from ``evaluate()``'s (and ``bigganctl eval``'s) arguments."""
    if images is not None and model is not None:
        raise UsageError("give either a model or --images, not both", param="images")
    if images is not None:
        return Images(images, resize, center_crop)
    if resize is not None or center_crop is not None:
        return _NotImages("resize" if resize is not None else "center_crop")
    if weights is not None and isinstance(model, torch.nn.Module):
        return _NotImages("weights", "weights= only applies to a model name or folder")
    return Generated(model or "biggan-deep-128", weights, psi, seed, classes)


@dataclass(frozen=True)
class _NotImages:
    """An image-only option given for a generator: refused when the source is opened (after
    the cheaper checks, as before)."""

    option: str
    message: str = "only applies to --images"

    def open(self, **kw: Any):
        raise UsageError(self.message, param=self.option)


def _warn_default(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr)


def evaluate(model: Model | None = None, weights: str | None = None, images: str | os.PathLike | None = None,
             metrics: str | Iterable[str] = ("fid", "is"), n: int | None = None, psi: float = 1.0, seed: int = 0,
             classes: Classes = "balanced", ref: str | os.PathLike | None = None,
             inception_weights: str | os.PathLike | None = None, device: str = "auto", dtype: str = "fp32",
             batch_size: int | None = None, resume: bool = True, progress: ProgressArg = True,
             force: bool = False, resize: int | None = None, center_crop: int | None = None,
             is_splits: int | str = S.IS_SPLITS, is_shuffle: bool = True, kid_subsets: int = S.KID_SUBSETS,
             kid_subset_size: int | None = None, pr_distances: str = "fp32",
             checkpoint_every: int | None = None, warn: Callable[[str], None] | None = None,
             compile: Compile = False) -> dict[str, Any]:
    """Evaluate a generator or a set of images; returns the ``--json`` document as a dict.

    ``n`` defaults to 50000 for a generator and to every image of ``images``. ``ref`` (a
    registered name such as ``imagenet-128``, or a statistics file) is needed for FID and
    KID. KID needs the reference's features: stored (``stats compute --keep-features``) or, for
    an ADM reference batch, computed from its images on first use and cached. Without them
    ``"all"`` gives FID and IS (KID null, with a warning) and a KID named in ``metrics`` is
    refused (UsageError). ``kid_subset_size`` defaults to ``min(1000, n, reference count)`` (a warning when
    that is below 1000); an explicit value larger than either set is refused. The Inception
    Score follows torch-fidelity (seeded shuffle, ``is_splits`` contiguous splits);
    ``is_shuffle=False`` gives contiguous splits, ``is_splits="adm"`` ADM's evaluator's rule
    (consecutive blocks of 5000, the mean of their scores; the result's ``is_rule`` says which).
    ``"sfid"`` needs the reference's ``mu_s``/``sigma_s`` (ADM batches, ``stats compute``);
    ``"precision"``/``"recall"`` (or ``"pr"``) need reference features like KID, and
    ``pr_distances`` is ``"fp32"`` or ADM's ``"fp16"`` (docs/evaluation.md).
    ``progress``: True (tqdm bars), False, ``fn(done, total)`` after every batch, or a
    reporter (``bigganctl eval`` passes its rich bars).
    ``compile``: True or a torch.compile mode (``default``, ``reduce-overhead``,
    ``max-autotune``) runs the generator and the extractor compiled.
    """
    wanted = normalize_metrics(metrics)
    what = subject(model=model, weights=weights, images=images, resize=resize, center_crop=center_crop,
                   psi=psi, seed=seed, classes=classes)
    n_splits, is_adm = splits_rule(is_splits)
    protocol = Protocol(wanted, n_splits, is_adm=is_adm, kid_subsets=kid_subsets, kid_subset_size=kid_subset_size,
                        kid_optional=kid_if_available(metrics), optional=optional_metrics(metrics),
                        is_shuffle=is_shuffle, pr_distances=pr_distances)
    return _evaluate(what, protocol, n=n, ref=ref, inception_weights=inception_weights, device=device,
                     dtype=dtype, force=force, progress=as_reporter(progress), warn=warn,
                     options=RunOptions(batch_size, resume, checkpoint_every, resolve_compile(compile)))


def splits_rule(is_splits: int | str) -> tuple[int, bool]:
    """``is_splits`` (a count, or ``"adm"``) -> (Protocol.is_splits, Protocol.is_adm)."""
    if isinstance(is_splits, str):
        if is_splits.strip().lower() == "adm":
            return S.IS_SPLITS, True
        try:
            return int(is_splits), False
        except ValueError:
            raise UsageError(f"expected a number of splits or 'adm', got {is_splits!r}",
                             param="is_splits") from None
    return is_splits, False


def _evaluate(what: Images | Generated | _NotImages, protocol: Protocol, *, n: int | None,
                     ref: str | os.PathLike | None, inception_weights: str | os.PathLike | None,
                     device: Device, dtype: Dtype, force: bool, progress: Reporter | None,
                     warn: Callable[[str], None] | None, options: RunOptions = RunOptions()) -> dict[str, Any]:
    """:func:`evaluate` once its arguments are explicit inputs."""
    t0 = time.time()
    warn = warn or _warn_default
    warnings: list[str] = []

    def note(msg: str) -> None:
        warnings.append(msg)
        if is_main():
            warn(msg)

    n = check_int(n, "n", optional=True)
    protocol.check()
    if protocol.needs_ref and ref is None:
        raise UsageError(f"{'/'.join(m.upper() for m in protocol.needs_ref)} needs reference statistics: "
                         "a registered name (imagenet-64|128|256|512) or a FILE.npz with mu/sigma",
                         param="ref", hint="see `bigganctl stats list`; make one with `bigganctl stats compute`")
    if n is not None:
        check_n(int(n), protocol.metrics, protocol.is_splits, protocol.is_adm, protocol.optional)

    # Reference statistics and the extractor's identity first: cheap, and fail fast.
    shown = progress if is_main() else None
    inc_path = resolve_weights(inception_weights, progress=shown)
    fx_id = extractor_id(weights_sha256(inc_path))
    ref_stats = load_reference(ref, progress=shown) if protocol.needs_ref else None
    if ref_stats is not None and ref_stats.extractor_id != fx_id:    # hash again before blaming the reference
        fx_id = extractor_id(weights_sha256(inc_path, verify=True))
    check_reference(ref_stats, protocol, extractor_id=fx_id, force=force, note=note)
    protocol = kid_plan(ref_stats, protocol, note)

    with session(device) as (d, dev):
        src, info = what.open(n=n, dtype=dtype, device=dev, progress=shown, compile=options.compile)
        fx = InceptionFeatures(inc_path, device=dev, compile=options.compile)
        return evaluate_source(src, info, n=n, fx=fx, ref=ref_stats, protocol=protocol, device=dev,
                               options=options, force=force, progress=progress, note=note, warn=warn,
                               warnings=warnings, dist=d, t0=t0)
