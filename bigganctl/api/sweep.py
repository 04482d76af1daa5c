"""``bigganctl.sweep()``: the truncation trade-off, measured with common random numbers.

::

    doc = bigganctl.sweep(models=["biggan-deep-128"], psis="0.1:1.0:0.1", n=10000,
                          ref="imagenet-128", out_dir="sweep")
    doc["rows"]        # one per (model, psi): psi, convention, fid, is_mean, ... seconds

Every psi evaluates the same samples: sample ``i`` has seed ``seed + i`` and the ``i``-th
class of the class plan (:func:`bigganctl.sampling.class_plan`), and its noise comes
from the same uniforms whatever psi is (:mod:`bigganctl.sampling`), so the curve is smooth
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

import functools
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .. import __version__
from .._io import sha256_file, write_json
from ..compiling import resolve_compile
from ..errors import RuntimeFailure, UsageError
from ..media.manifest import sweep_manifest
from ..media.plot import plot_sweep, write_csv, write_strip
from ..metrics import maths as S
from ..metrics.evaluation import Protocol, RunOptions, check_n, kid_if_available, normalize_metrics
from ..metrics.extract import distributed_env
from ..metrics.features import extractor_id, resolve_weights, weights_sha256
from ..metrics.reference import REFERENCES, unknown_ref
from ..parsing import parse_float, parse_grid
from ..progress import Reporter
from ..runtime import default_batch_size, dtype_name, resolve_device, resolve_dtype
from ..sampling import check_psi, plan_key
from .common import open_generator, tqdm_reporter

DEFAULT_GRID = "0.1:1.0:0.1"
DEFAULT_N = 10_000
DEFAULT_METRICS = ("fid", "is")
DEFAULT_STRIP_COLUMNS = 8
STATE_FILE = ".sweep-state.json"
STATE_VERSION = 1
FILES = {"csv": "sweep.csv", "json": "sweep.json", "plot": "sweep.png", "strip": "strip.png",
         "manifest": "manifest.json"}

#: ``on_row(row, earlier)``: a row is finished (``earlier``: kept from a previous run).
OnRow = Callable[[dict, bool], None]
#: ``progress(model, psi, done, total)`` after every batch of the running evaluation.
Progress = Callable[[str, float, int, int], None]
#: ``reporters(model, psi)``: the progress reporter of one row's evaluation.
Reporters = Callable[[str, float], "Reporter | None"]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


# ----------------------------------------------------------------------------- inputs

def parse_psis(psis: str | float | Iterable[float], *, option: str = "--trunc") -> list[float]:
    """A grid string (``0.1:1.0:0.1``, ``0.2,0.5,1.0``, combinations) or numbers -> floats."""
    if isinstance(psis, str):
        return parse_grid(psis, option=option)
    items = [psis] if isinstance(psis, (int, float)) else list(psis)
    out: list[float] = []
    for v in items:
        f = parse_float(v, option=option)
        if f not in out:
            out.append(f)
    if not out:
        raise UsageError("empty grid (expected e.g. 0.1:1.0:0.1 or 0.2,0.5,1.0)", option=option)
    return out


def _ref_identity(ref: Any) -> dict[str, Any] | None:
    if ref is None:
        return None
    if str(ref) in REFERENCES:
        return {"name": str(ref)}
    p = Path(str(ref)).expanduser()
    if not p.is_file():
        raise unknown_ref(str(ref), "--ref")
    return {"sha256": sha256_file(p)}


@dataclass
class Plan:
    """Everything a sweep is, checked before anything is loaded or written."""

    names: list[Any]
    weights: str | None
    grid: list[float]
    protocol: Protocol
    n: int
    seed: int
    classes: Any
    ref: Any
    inception: Path
    device: torch.device
    dtype: str
    idents: list[dict]
    labels: list[str]
    key: dict[str, Any]
    settings: dict[str, Any]
    files: dict[str, str]
    out: Path

    @property
    def multi(self) -> bool:
        return len(self.idents) > 1

    def row_key(self, i: int, psi: float) -> str:
        return f"{self.labels[i]}|{psi!r}"

    def rows(self) -> list[tuple[int, float]]:
        return [(i, psi) for i in range(len(self.idents)) for psi in self.grid]


def plan(models: Any, psis: Any, n: int, ref: Any, metrics: Any, seed: int, classes: Any, weights: str | None,
         out_dir: Any, inception_weights: Any, device: Any, dtype: Any, batch_size: int | None,
         strip_columns: int, progress: Reporter | None) -> Plan:
    """Validate every input (UsageError naming the option) and fix the identity of
    everything that changes the numbers (the resume key)."""
    wanted = normalize_metrics(metrics)
    grid = parse_psis(psis)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UsageError(f"must be a positive integer, got {n!r}", option="--n")
    check_n(n, wanted, S.IS_SPLITS)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UsageError(f"must be an integer >= 0, got {seed!r}", option="--seed")
    if strip_columns < 0:
        raise UsageError(f"must be >= 0, got {strip_columns}", option="--strip-columns")
    if batch_size is not None and batch_size < 1:
        raise UsageError(f"must be >= 1, got {batch_size}", option="--batch-size")
    names = [models] if isinstance(models, (str, os.PathLike)) else list(models or ["biggan-deep-128"])
    if len(set(map(str, names))) != len(names):
        raise UsageError("the same model is given twice", option="--model")
    if weights is not None and str(weights) != "random" and len(names) > 1:
        raise UsageError("a weights file belongs to one model; compare trained models as folders "
                         "(--model DIR) or use --weights random", option="--weights")
    protocol = Protocol(wanted, kid_optional=kid_if_available(metrics))
    if protocol.needs_ref and ref is None:
        raise UsageError(f"{'/'.join(m.upper() for m in protocol.needs_ref)} needs reference statistics: a "
                         "registered name (imagenet-64|128|256|512) or a FILE.npz with mu/sigma", option="--ref")
    if distributed_env().active:
        raise UsageError("sweep runs in one process; run `eval` under torchrun per psi instead")
    dev, dt = resolve_device(device), dtype_name(resolve_dtype(dtype))
    cls_key = plan_key(classes)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} exists and is not a folder", option="--out")

    from ..loader import weights_identity

    idents = [weights_identity(m, weights, progress=progress) for m in names]
    for ident in idents:
        for psi in grid:
            check_psi(psi, ident["truncation"])
    labels = [i["model"] for i in idents]
    if len(set(labels)) != len(labels):
        labels = [str(m) for m in names]      # two folders of the same name: use the paths
    ref_id = _ref_identity(ref) if protocol.needs_ref else None
    inc_path = resolve_weights(inception_weights, progress=progress)
    inc_sha = weights_sha256(inc_path)
    key = {"v": STATE_VERSION, "models": idents, "n": n, "seed": seed, "classes": cls_key,
           "metrics": list(wanted), "ref": ref_id, "extractor": extractor_id(inc_sha), "dtype": dt,
           "device": dev.type}
    settings = {"n": n, "seed": seed, "seeds": f"{seed}-{seed + n - 1}", "classes": cls_key,
                "metrics": list(wanted), "ref": None if ref is None else str(ref), "extractor_id": key["extractor"],
                "inception_weights_sha256": inc_sha, "dtype": dt, "device": dev.type,
                "is_splits": S.IS_SPLITS if "is" in wanted else None, "strip_columns": min(strip_columns, n)}
    files = {k: v for k, v in FILES.items() if k != "strip" or strip_columns > 0}
    return Plan(names, weights, grid, protocol, n, seed, classes, ref, inc_path, dev, dt, idents, labels, key,
                settings, files, out)


# ----------------------------------------------------------------------------- state

def _read_state(path: Path) -> dict | None:
    try:
        st = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return st if isinstance(st, dict) and isinstance(st.get("rows"), dict) else None


def _changed(old: dict, new: dict) -> str:
    """``n 64 -> 32, ref`` for the knobs that differ between two state keys."""
    parts = []
    for k in new:
        if old.get(k) != new[k]:
            a, b = old.get(k), new[k]
            simple = all(isinstance(v, (int, float, str)) or v is None for v in (a, b))
            parts.append(f"{k} {a} -> {b}" if simple else ("models/weights" if k == "models" else k))
    return ", ".join(parts) or "format version"


def earlier_state(p: Plan, *, resume: bool, overwrite: bool, note: Callable[[str], None],
                  warn: Callable[[str], None]) -> dict | None:
    """The state an earlier run left in the folder, if it is this sweep's (and resuming)."""
    state_path = p.out / STATE_FILE
    state = _read_state(state_path) if state_path.is_file() else None
    if state is None and any((p.out / f).exists() for f in FILES.values()) and not overwrite:
        raise UsageError(f"{p.out} holds sweep outputs of another run (no {STATE_FILE}); "
                         "pass --overwrite to replace them", option="--out")
    if state is not None and state.get("key") != p.key:
        warn(f"{p.out}: settings changed since the last sweep there "
             f"({_changed(state.get('key') or {}, p.key)}); starting fresh, the earlier rows are dropped")
        return None
    if state is not None and not resume:
        note(f"--no-resume: recomputing every row in {p.out}")
        return None
    return state


def document(p: Plan, rows_done: dict[str, dict]) -> dict[str, Any]:
    """``sweep.json``: the rows in grid order, the models, the settings."""
    rows = [public(p, rows_done[p.row_key(i, psi)]) for i, psi in p.rows()]
    return {"kind": "bigganctl.sweep", "psis": p.grid, "rows": rows,
            "models": [{"model": p.labels[i], "weights": p.idents[i]["sha256"],
                        "convention": p.idents[i]["truncation"], "resolution": p.idents[i]["resolution"]}
                       for i in range(len(p.idents))],
            "settings": p.settings, "files": p.files, "version": __version__}


def public(p: Plan, row: dict) -> dict:
    return {k: v for k, v in row.items() if p.multi or k != "model"}


# ----------------------------------------------------------------------------- the sweep

def sweep(models: str | Sequence[str] | None = None, psis: str | Iterable[float] = DEFAULT_GRID,
          n: int = DEFAULT_N, ref: str | os.PathLike | None = None,
          metrics: str | Iterable[str] = DEFAULT_METRICS, seed: int = 0, classes: Any = "balanced",
          weights: str | None = None, out_dir: str | os.PathLike = "sweep",
          inception_weights: str | os.PathLike | None = None, device: str = "auto", dtype: str = "fp32",
          batch_size: int | None = None, resume: bool = True, overwrite: bool = False,
          strip_columns: int = DEFAULT_STRIP_COLUMNS, force: bool = False, checkpoint_every: int | None = None,
          on_row: OnRow | None = None, progress: bool | Progress = True,
          note: Callable[[str], None] | None = None, warn: Callable[[str], None] | None = None,
          command: str | None = None, compile: Any = False) -> dict[str, Any]:
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


def run_sweep(*, models: Any, psis: Any, n: int, ref: Any, metrics: Any, seed: int, classes: Any,
              weights: str | None, out_dir: Any, inception_weights: Any, device: Any, dtype: Any,
              batch_size: int | None, resume: bool, overwrite: bool, strip_columns: int, force: bool,
              checkpoint_every: int | None, on_row: OnRow | None, reporters: Reporters,
              loading: Reporter | None, note: Callable[[str], None] | None,
              warn: Callable[[str], None] | None, command: str | None, compile: Any = False) -> dict[str, Any]:
    """:func:`sweep` with explicit progress: ``reporters(model, psi)`` for each row's
    evaluation, ``loading`` for downloads (``bigganctl sweep``)."""
    options = RunOptions(batch_size, resume, checkpoint_every, resolve_compile(compile))
    note = note or _stderr
    warn = warn or (lambda m: _stderr(f"warning: {m}"))
    p = plan(models, psis, n, ref, metrics, seed, classes, weights, out_dir, inception_weights, device, dtype,
             batch_size, strip_columns, loading)
    state = earlier_state(p, resume=resume, overwrite=overwrite, note=note, warn=warn)
    rows_done: dict[str, dict] = dict(state["rows"]) if state is not None else {}
    pending = [(i, psi) for i, psi in p.rows() if p.row_key(i, psi) not in rows_done]
    written = {"psis": p.grid, "files": sorted(p.files.values()), "strip_columns": p.settings["strip_columns"],
               "labels": p.labels}
    for i, psi in p.rows():
        if p.row_key(i, psi) in rows_done and on_row is not None:
            on_row(public(p, rows_done[p.row_key(i, psi)]), True)
    if not pending and state is not None and state.get("written") == written \
            and all((p.out / f).is_file() for f in p.files.values()):
        note(f"every row is done and {p.out} is up to date; nothing to evaluate")
        return document(p, rows_done)
    try:
        p.out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RuntimeFailure(f"cannot create {p.out}: {e.strerror or e}") from None

    def save_state(done: dict | None = None) -> None:
        write_json(p.out / STATE_FILE, {"version": STATE_VERSION, "key": p.key, "rows": rows_done, "written": done})

    save_state()
    gens = Generators(p, loading, options.compile)
    for i, psi, row in evaluate_rows(p, pending, gens, options=options, force=force, reporters=reporters,
                                     warn=warn, loading=loading):
        rows_done[p.row_key(i, psi)] = row
        save_state()
        if on_row is not None:
            on_row(public(p, row), False)
    doc = document(p, rows_done)
    write_outputs(p, doc, gens, batch_size=batch_size, command=command)
    save_state(written)
    return doc


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
                  force: bool, reporters: Reporters, warn: Callable[[str], None], loading: Reporter | None):
    """Yield ``(model index, psi, row)`` for each pending row; the Inception network and the
    reference are loaded once, and only when something is pending."""
    if not pending:
        return
    from ..metrics import evaluation, features, ref_features
    from ..metrics.reference import load_reference

    fx = features.InceptionFeatures(p.inception, device=p.device, compile=options.compile)
    ref_stats = load_reference(p.ref, progress=loading) if p.protocol.needs_ref else None
    seen: set[str] = set()

    def warn_once(msg: str) -> None:
        if msg not in seen:
            seen.add(msg)
            warn(msg)

    protocol = evaluation.kid_plan(ref_stats, p.protocol, warn_once)
    if "kid" in protocol.metrics:
        ref_features.fill_features(ref_stats, fx, batch_size=options.batch_size or default_batch_size(p.device), progress=loading)

    for i, psi in pending:
        res = evaluation.evaluate_generator(
            G=gens(i), fx=fx, ref=ref_stats, protocol=protocol, n=p.n, psi=psi, seed=p.seed,
            classes=p.classes, device=p.device, dtype=p.dtype, options=options, force=force,
            progress=reporters(p.labels[i], psi), warn=warn_once)
        yield i, psi, {"model": p.labels[i], "psi": psi, "convention": res["trunc_convention"],
                       **{k: res[k] for k in ("fid", "is_mean", "is_std", "kid_mean", "kid_std")},
                       "n": res["n"], "seconds": res["seconds"]}


# ----------------------------------------------------------------------------- files

def write_outputs(p: Plan, doc: dict, gens: Generators, *, batch_size: int | None, command: str | None) -> None:
    for k, f in FILES.items():
        if k not in p.files and (p.out / f).is_file():      # e.g. --strip-columns 0 now: no stale strip
            (p.out / f).unlink()
    strip_info = None
    if "strip" in p.files:
        strip_info = write_strip(p.out / p.files["strip"], [gens(i) for i in range(len(p.idents))], p.labels,
                                 p.grid, n=p.n, seed=p.seed, classes=p.classes,
                                 columns=p.settings["strip_columns"], batch_size=batch_size)
    rows = doc["rows"] if p.multi else [{"model": p.labels[0], **r} for r in doc["rows"]]
    shown = [m for m in p.protocol.metrics if m != "kid" or any(r.get("kid_mean") is not None for r in rows)]
    plot_sweep(p.out / p.files["plot"], rows, metrics=shown, title=_title(p.labels, p.settings))
    write_csv(p.out / p.files["csv"], doc["rows"], multi=p.multi)
    write_json(p.out / p.files["json"], doc)
    write_json(p.out / p.files["manifest"], sweep_manifest(doc, p.idents, gens.loaded, strip_info, command))


def _title(labels: Sequence[str], settings: dict) -> str:
    ref = f", ref {Path(settings['ref']).name}" if settings.get("ref") else ""
    return f"{', '.join(labels)}: n={settings['n']}, seeds {settings['seeds']}{ref}"
