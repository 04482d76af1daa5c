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
import inspect
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from .._io import make_dir, together, write_json
from ..runtime.compiling import resolve_compile
from ..integrity import describe_failure
from ..runtime.distributed import Dist, main_decides, session
from ..media.manifest import sweep_manifest
from ..generate import strip_images
from ..media.images import GRID_PADDING
from ..media.plot import plot_sweep, write_csv, write_strip
from ..noise import class_plan
from ..metrics.evaluation import RunOptions
from ..progress import ProgressArg, Reporter, as_reporter, from_callback, is_reporter, labelled, tqdm_reporter
from ._shared import open_generator
from ..types import Classes, Compile, Device, Dtype
from .sweep_plan import (DEFAULT_GRID, DEFAULT_METRICS, DEFAULT_N, DEFAULT_STRIP_COLUMNS, FILES, STATE_FILE,  # noqa: F401
                         STATE_VERSION, Plan, document, parse_psis, plan, public, resume_point, seal_state,
                         written_key)

#: ``on_row(row, earlier)``: a row is finished (``earlier``: kept from a previous run).
OnRow = Callable[[dict, bool], None]
#: ``fn(model, psi, done, total)`` after every batch of a row's evaluation (the sweep's own
#: callback shape, besides everything ``progress=`` takes elsewhere).
RowCallback = Callable[[str, float, int, int], None]
#: ``rows(model, psi)``: the progress reporter of one row's evaluation.
Rows = Callable[[str, float], "Reporter | None"]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


# ----------------------------------------------------------------------------- the sweep

def sweep(models: str | Sequence[str] | None = None, psis: str | Iterable[float] = DEFAULT_GRID,
          n: int = DEFAULT_N, ref: str | os.PathLike | None = None,
          metrics: str | Iterable[str] = DEFAULT_METRICS, seed: int = 0, classes: Classes = "balanced",
          weights: str | None = None, out_dir: str | os.PathLike = "sweep",
          inception_weights: str | os.PathLike | None = None, device: Device = "auto", dtype: Dtype = "fp32",
          batch_size: int | None = None, resume: bool = True, overwrite: bool = False,
          strip_columns: int = DEFAULT_STRIP_COLUMNS, force: bool = False, checkpoint_every: int | None = None,
          on_row: OnRow | None = None, progress: ProgressArg | RowCallback = True,
          note: Callable[[str], None] | None = None, warn: Callable[[str], None] | None = None,
          command: str | None = None, compile: Compile = False) -> dict[str, Any]:
    """Evaluate every (model, psi) on the same samples; write the outputs; return ``sweep.json``.

    ``models``: registered names or folders (default biggan-deep-128); ``weights`` applies
    to every model (``random``, or a file for a single model). ``psis``: a grid string or
    numbers, each checked against the model's convention (DeepMind: (0, 1]). Raises
    UsageError for bad input before anything is loaded. ``progress``: True (tqdm bars),
    False, ``fn(done, total)``, a reporter (every task; a row's evaluation is labelled
    ``"{model} psi={psi}: ..."``; ``bigganctl sweep`` passes its live table), or
    ``fn(model, psi, done, total)`` after every batch. ``on_row(row, earlier)`` as each row
    is done. ``compile``: True or a mode.
    """
    options = RunOptions(batch_size, resume, checkpoint_every, resolve_compile(compile))
    rows_progress, loading = _progress(progress)
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

        state_file = StateFile(p, rows_done, warn, enabled=d.is_main)     # rank 0 writes every file
        if d.is_main:
            make_dir(p.out)
        state_file.save()
        gens = Generators(p, loading, options.compile)
        for i, psi, row in evaluate_rows(p, pending, gens, options=options, force=force, rows=rows_progress,
                                         warn=warn, loading=loading, dist=d):
            rows_done[p.row_key(i, psi)] = row
            state_file.save()
            if on_row is not None and d.is_main:
                on_row(public(p, row), False)
        doc = document(p, rows_done)
        if d.is_main:
            write_outputs(p, doc, gens, batch_size=batch_size, command=command)
            state_file.save(written_key(p))
    return doc


def _progress(progress: ProgressArg | RowCallback) -> tuple[Rows, Reporter | None]:
    """``(rows, loading)``: each row's reporter and the downloads'. A reporter labels a row's
    tasks with the row; ``fn(model, psi, done, total)`` hears the rows, tqdm the downloads."""
    if callable(progress) and not is_reporter(progress) and _takes(progress, 4):
        return (lambda m, psi: from_callback(functools.partial(progress, m, psi))), tqdm_reporter()
    shown = as_reporter(progress)
    return (lambda m, psi: labelled(shown, f"{m} psi={psi}")), shown


def _takes(fn: Callable, count: int) -> bool:
    try:
        inspect.signature(fn).bind(*range(count))
    except (TypeError, ValueError):
        return False
    return True


class StateFile:
    """``out_dir/.sweep-state.json``, written after every row; a failure to write it costs
    only resumability (one warning, the sweep goes on)."""

    def __init__(self, p: Plan, rows: dict[str, dict], warn: Callable[[str], None], *, enabled: bool):
        self.p, self.rows, self.warn, self.enabled, self.failed = p, rows, warn, enabled, False

    def save(self, written: dict | None = None) -> None:
        if not self.enabled or self.failed:
            return
        try:
            write_json(self.p.out / STATE_FILE, seal_state({"version": STATE_VERSION, "key": self.p.key,
                                                            "rows": self.rows, "written": written}))
        except Exception as e:        # costs only resumability
            self.failed = True
            self.warn(f"cannot save {self.p.out / STATE_FILE} ({describe_failure(e)}); the sweep goes on, "
                      "but cannot be resumed")


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
                  force: bool, rows: Rows, warn: Callable[[str], None], loading: Reporter | None,
                  dist: Dist = Dist()):
    """Yield ``(model index, psi, row)`` for each pending row; the Inception network and the
    reference are loaded once, and only when something is pending. Under torchrun each row
    is one evaluation split over the processes (``dist``), as ``eval`` does it."""
    if not pending:
        return
    from ..metrics import evaluation, features
    from ..metrics.reference import load_reference

    fx = features.InceptionFeatures(p.inception, device=p.device, compile=options.compile)
    ref_stats = load_reference(p.ref, progress=loading) if p.protocol.needs_ref else None
    seen: set[str] = set()

    def warn_once(msg: str) -> None:
        if msg not in seen and dist.is_main:
            seen.add(msg)
            warn(msg)

    if ref_stats is not None and ref_stats.extractor_id != fx.id:     # hash again before blaming the reference
        fx.reverify()
    evaluation.check_reference(ref_stats, p.protocol, extractor_id=fx.id, force=force, note=warn_once)
    protocol = evaluation.kid_plan(ref_stats, p.protocol, warn_once)
    for i, psi in pending:
        t0, warnings = time.time(), []
        src, info = evaluation.generator_source(gens(i), n=p.n, psi=psi, seed=p.seed, classes=p.classes,
                                                dtype=p.dtype)
        res = evaluation.evaluate_source(
            src, info, n=p.n, fx=fx, ref=ref_stats, protocol=protocol, device=p.device, options=options,
            force=force, progress=rows(p.labels[i], psi) if dist.is_main else None,
            note=lambda m, w=warnings: (w.append(m), warn_once(m)), warn=warn_once, warnings=warnings,
            dist=dist, t0=t0)
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
        strip_info = _strip(p, gens, batch_size=batch_size)
    rows = doc["rows"] if p.multi else [{"model": p.labels[0], **r} for r in doc["rows"]]
    key = {"kid": "kid_mean", "sfid": "sfid", "precision": "precision", "recall": "recall"}
    shown = [m for m in p.protocol.metrics if m not in key or any(r.get(key[m]) is not None for r in rows)]
    plot_sweep(p.out / p.files["plot"], rows, metrics=shown, title=_title(p.labels, p.settings))
    write_csv(p.out / p.files["csv"], doc["rows"], multi=p.multi)
    write_json(p.out / p.files["json"], doc)
    write_json(p.out / p.files["manifest"], sweep_manifest(doc, p.idents, gens.loaded, strip_info, command))


def _strip(p: Plan, gens: Generators, *, batch_size: int | None) -> dict[str, Any]:
    """``strip.png``, one row per (model, psi), model-major: the first ``strip_columns``
    samples of the evaluation (same seeds and classes in every row); its manifest entry."""
    columns = p.settings["strip_columns"]
    blocks = [strip_images(gens(i), psis=p.grid, n=p.n, seed=p.seed, classes=p.classes, columns=columns,
                           batch_size=batch_size) for i in range(len(p.idents))]
    tile = write_strip(p.out / p.files["strip"], blocks, columns=columns)
    cls = class_plan(p.classes, p.n, gens(0).num_classes, p.seed)[0][:columns].tolist()
    return {"file": p.files["strip"], "rows": [{"model": m, "psi": q} for m in p.labels for q in p.grid],
            "columns": columns, "seeds": list(range(p.seed, p.seed + columns)), "classes": cls, "tile": tile,
            "padding": GRID_PADDING}


def _title(labels: Sequence[str], settings: dict) -> str:
    ref = f", ref {Path(settings['ref']).name}" if settings.get("ref") else ""
    return f"{', '.join(labels)}: n={settings['n']}, seeds {settings['seeds']}{ref}"
