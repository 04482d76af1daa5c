"""``bigganctl.sweep()``: the truncation trade-off, measured with common random numbers.

::

    doc = bigganctl.sweep(models=["biggan-deep-128"], psis="0.1:1.0:0.1", n=10000,
                          ref="imagenet-128", out_dir="sweep")
    doc["rows"]        # one per (model, psi): psi, convention, fid, is_mean, ... seconds

Every psi evaluates the same samples: sample ``i`` has seed ``seed + i`` and the ``i``-th
class of the class plan (:func:`bigganctl.noise.class_plan`), and its noise comes
from the same uniforms whatever psi is (:mod:`bigganctl.noise`), so the curve is smooth
and its differences are due to psi alone. Each row is exactly what
:func:`bigganctl.evaluate` returns for that psi alone; the generator, the Inception network
and the reference statistics are loaded once.

Files in ``out_dir`` (all written atomically, at the end): ``sweep.csv`` and ``sweep.json``
(the rows, the psi values used, the settings), ``sweep.png`` (IS against FID with each
point labelled by psi, and each metric against psi), ``strip.png`` (one row per (model,
psi): the first ``strip_columns`` samples of the evaluation, same z and classes in every
row) and ``manifest.json``.

Resuming: ``out_dir/.sweep-state.json`` keeps the finished rows, keyed on everything that
changes the numbers (models and weights, n, seed, classes, metrics, reference, extractor,
dtype, device type). The same call again evaluates only the missing psi values (the
unfinished one continues from its evaluation checkpoint) and
returns at once when everything is done; a call with other settings starts fresh.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from .._io import make_dir, together, write_json
from ..runtime.compiling import resolve_compile
from ..integrity import describe_failure
from ..runtime.distributed import Dist, main_decides, session
from ..media.manifest import sweep_manifest
from ..media.plot import plot_sweep, write_csv, write_strip
from ..metrics.evaluation import RunOptions
from ..progress import Reporter
from ..runtime.device import default_batch_size
from ._shared import open_generator
from ..progress import tqdm_reporter
from ..types import Classes, Compile, Device, Dtype
from .sweep_plan import (DEFAULT_GRID, DEFAULT_METRICS, DEFAULT_N, DEFAULT_STRIP_COLUMNS, FILES, STATE_FILE,  # noqa: F401
                         STATE_VERSION, Plan, document, parse_psis, plan, public, resume_point, seal_state,
                         written_key)

#: ``on_row(row, earlier)``: a row is finished (``earlier``: kept from a previous run).
OnRow = Callable[[dict, bool], None]
#: ``progress(model, psi, done, total)`` after every batch of the running evaluation.
Progress = Callable[[str, float, int, int], None]
#: ``reporters(model, psi)``: the progress reporter of one row's evaluation.
Reporters = Callable[[str, float], "Reporter | None"]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


# ----------------------------------------------------------------------------- the sweep

def sweep(models: str | Sequence[str] | None = None, psis: str | Iterable[float] = DEFAULT_GRID,
          n: int = DEFAULT_N, ref: str | os.PathLike | None = None,
          metrics: str | Iterable[str] = DEFAULT_METRICS, seed: int = 0, classes: Classes = "balanced",
          weights: str | None = None, out_dir: str | os.PathLike = "sweep",
          inception_weights: str | os.PathLike | None = None, device: str = "auto", dtype: str = "fp32",
          batch_size: int | None = None, resume: bool = True, overwrite: bool = False,
          strip_columns: int = DEFAULT_STRIP_COLUMNS, force: bool = False, checkpoint_every: int | None = None,
          on_row: OnRow | None = None, progress: bool | Progress = True,
          note: Callable[[str], None] | None = None, warn: Callable[[str], None] | None = None,
          command: str | None = None, compile: Compile = False) -> dict[str, Any]:
    """Evaluate every (model, psi) on the same samples; write the outputs; return ``sweep.json``.

    ``models``: registered names or folders (default biggan-deep-128); ``weights`` applies
    to every model (``random``, or a file for a single model). ``psis``: a grid string or
    numbers, each checked against the model's convention (DeepMind: (0, 1]). Raises
    UsageError for bad input before anything is loaded. ``progress``: True (tqdm bars),
    False, or ``fn(model, psi, done, total)`` after every batch. ``compile``: True or a mode.
    """
    from ..progress import from_callback

    if callable(progress):
        reporters: Reporters = lambda m, psi: from_callback(functools.partial(progress, m, psi))  # noqa: E731
    else:
        bars = tqdm_reporter() if progress else None
        reporters = lambda m, psi: bars  # noqa: E731
    return run_sweep(models=models, psis=psis, n=n, ref=ref, metrics=metrics, seed=seed, classes=classes,
                     weights=weights, out_dir=out_dir, inception_weights=inception_weights, device=device,
                     dtype=dtype, batch_size=batch_size, resume=resume, overwrite=overwrite,
                     strip_columns=strip_columns, force=force, checkpoint_every=checkpoint_every, on_row=on_row,
                     reporters=reporters, loading=tqdm_reporter() if progress else None, note=note, warn=warn,
                     command=command, compile=compile)


def run_sweep(*, models: Any, psis: Any, n: int, ref: Any, metrics: Any, seed: int, classes: Classes,
              weights: str | None, out_dir: Any, inception_weights: Any, device: Device, dtype: Dtype,
              batch_size: int | None, resume: bool, overwrite: bool, strip_columns: int, force: bool,
              checkpoint_every: int | None, on_row: OnRow | None, reporters: Reporters,
              loading: Reporter | None, note: Callable[[str], None] | None,
              warn: Callable[[str], None] | None, command: str | None, compile: Compile = False) -> dict[str, Any]:
    """:func:`sweep` with explicit progress: ``reporters(model, psi)`` for each row's
    evaluation, ``loading`` for downloads (``bigganctl sweep``)."""
    options = RunOptions(batch_size, resume, checkpoint_every, resolve_compile(compile))
    note = note or _stderr
    warn = warn or (lambda m: _stderr(f"warning: {m}"))
    p = plan(models, psis, n, ref, metrics, seed, classes, weights, out_dir, inception_weights, device, dtype,
             batch_size, strip_columns, loading)
    with session(device) as (d, dev):      # torchrun: every row's samples split over the processes
        p = dataclasses.replace(p, device=dev)
        state, up_to_date = main_decides(lambda: resume_point(p, resume=resume, overwrite=overwrite, note=note,
                                                               warn=warn), d, what="reading the sweep state")
        rows_done: dict[str, dict] = dict(state["rows"]) if state is not None else {}
        pending = [(i, psi) for i, psi in p.rows() if p.row_key(i, psi) not in rows_done]
        for i, psi in p.rows():
            if p.row_key(i, psi) in rows_done and on_row is not None and d.is_main:
                on_row(public(p, rows_done[p.row_key(i, psi)]), True)
        if up_to_date:
            if d.is_main:
                note(f"every row is done and {p.out} is up to date; nothing to evaluate")
            return document(p, rows_done)

        failed: list[str] = []

        def save_state(done: dict | None = None) -> None:
            if not d.is_main or failed:    # rank 0 writes every file
                return
            try:
                write_json(p.out / STATE_FILE, seal_state({"version": STATE_VERSION, "key": p.key,
                                                           "rows": rows_done, "written": done}))
            except Exception as e:        # costs only resumability
                failed.append(describe_failure(e))
                warn(f"cannot save {p.out / STATE_FILE} ({failed[0]}); the sweep goes on, but cannot be resumed")

        if d.is_main:
            _mkdir(p.out)
        save_state()
        gens = Generators(p, loading, options.compile)
        for i, psi, row in evaluate_rows(p, pending, gens, options=options, force=force, reporters=reporters,
                                         warn=warn, loading=loading, dist=d):
            rows_done[p.row_key(i, psi)] = row
            save_state()
            if on_row is not None and d.is_main:
                on_row(public(p, row), False)
        doc = document(p, rows_done)
        if d.is_main:
            write_outputs(p, doc, gens, batch_size=batch_size, command=command)
            save_state(written_key(p))
    return doc


def _mkdir(out: Path) -> None:
    make_dir(out)


class Generators:
    """Each model loaded once, when first needed."""

    def __init__(self, p: Plan, progress: Reporter | None, compile: str | None = None):
        self.p, self.progress, self.loaded, self.compile = p, progress, {}, compile

    def __call__(self, i: int):
        if i not in self.loaded:
            self.loaded[i] = open_generator(self.p.names[i], self.p.weights, self.p.device, self.p.dtype,
                                            progress=self.progress, compile=self.compile)
        return self.loaded[i]


def evaluate_rows(p: Plan, pending: Sequence[tuple[int, float]], gens: Generators, *, options: RunOptions,
                  force: bool, reporters: Reporters, warn: Callable[[str], None], loading: Reporter | None,
                  dist: Dist = Dist()):
    """Yield ``(model index, psi, row)`` for each pending row; the Inception network and the
    reference are loaded once, and only when something is pending. Under torchrun each row
    is one evaluation split over the processes (``dist``), as ``eval`` does it."""
    if not pending:
        return
    from ..metrics import evaluation, features, ref_features
    from ..metrics.reference import load_reference

    fx = features.InceptionFeatures(p.inception, device=p.device, compile=options.compile)
    ref_stats = load_reference(p.ref, progress=loading) if p.protocol.needs_ref else None
    seen: set[str] = set()

    def warn_once(msg: str) -> None:
        if msg not in seen and dist.is_main:
            seen.add(msg)
            warn(msg)

    protocol = evaluation.kid_plan(ref_stats, p.protocol, warn_once)
    if protocol.keeps_features:
        ref_features.fill_features(ref_stats, fx, batch_size=options.batch_size or default_batch_size(p.device),
                                   progress=loading if dist.is_main else None, dist=dist)

    for i, psi in pending:
        res = evaluation.evaluate_generator(
            G=gens(i), fx=fx, ref=ref_stats, protocol=protocol, n=p.n, psi=psi, seed=p.seed,
            classes=p.classes, device=p.device, dtype=p.dtype, options=options, force=force,
            progress=reporters(p.labels[i], psi) if dist.is_main else None, warn=warn_once, dist=dist)
        yield i, psi, {"model": p.labels[i], "psi": psi, "convention": res["trunc_convention"],
                       **{k: res[k] for k in ("fid", "is_mean", "is_std", "kid_mean", "kid_std", "sfid",
                                              "precision", "recall")},
                       "n": res["n"], "seconds": res["seconds"]}


# ----------------------------------------------------------------------------- files

def write_outputs(p: Plan, doc: dict, gens: Generators, *, batch_size: int | None, command: str | None) -> None:
    """The sweep's files, all together or none (:func:`bigganctl._io.together`)."""
    with together():
        _write_files(p, doc, gens, batch_size=batch_size, command=command)


def _write_files(p: Plan, doc: dict, gens: Generators, *, batch_size: int | None, command: str | None) -> None:
    for k, f in FILES.items():
        if k not in p.files and (p.out / f).is_file():      # e.g. --strip-columns 0 now: no stale strip
            (p.out / f).unlink()
    strip_info = None
    if "strip" in p.files:
        strip_info = write_strip(p.out / p.files["strip"], [gens(i) for i in range(len(p.idents))], p.labels,
                                 p.grid, n=p.n, seed=p.seed, classes=p.classes,
                                 columns=p.settings["strip_columns"], batch_size=batch_size)
    rows = doc["rows"] if p.multi else [{"model": p.labels[0], **r} for r in doc["rows"]]
    key = {"kid": "kid_mean", "sfid": "sfid", "precision": "precision", "recall": "recall"}
    shown = [m for m in p.protocol.metrics if m not in key or any(r.get(key[m]) is not None for r in rows)]
    plot_sweep(p.out / p.files["plot"], rows, metrics=shown, title=_title(p.labels, p.settings))
    write_csv(p.out / p.files["csv"], doc["rows"], multi=p.multi)
    write_json(p.out / p.files["json"], doc)
    write_json(p.out / p.files["manifest"], sweep_manifest(doc, p.idents, gens.loaded, strip_info, command))


def _title(labels: Sequence[str], settings: dict) -> str:
    ref = f", ref {Path(settings['ref']).name}" if settings.get("ref") else ""
    return f"{', '.join(labels)}: n={settings['n']}, seeds {settings['seeds']}{ref}"
