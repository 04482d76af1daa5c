"""``bigganctl.sweep()``: the truncation trade-off, measured with common random numbers.

::

    doc = bigganctl.sweep(models=["biggan-deep-128"], psis="0.1:1.0:0.1", n=10000,
                          ref="imagenet-128", out_dir="sweep")
    doc["rows"]        # one per (model, psi): psi, convention, fid, is_mean, ... seconds

Every psi evaluates the same samples: sample ``i`` has seed ``seed + i`` and the ``i``-th
class of the class plan (:func:`bigganctl.metrics.evaluate.class_plan`), and its noise comes
from the same uniforms whatever psi is (:mod:`bigganctl.sampling`), so the curve is smooth
and its differences are due to psi alone. Each row is exactly what
:func:`bigganctl.evaluate` returns for that psi alone; the generator, the Inception network
and the reference statistics are loaded once and handed to it.

Files in ``out_dir`` (all written atomically, at the end): ``sweep.csv`` and ``sweep.json``
(the rows, the psi values used, the settings), ``sweep.png`` (IS against FID with each
point labelled by psi, and each metric against psi), ``strip.png`` (one row per (model,
psi): the first ``strip_columns`` samples of the evaluation, same z and classes in every
row) and ``manifest.json``.

Resuming: ``out_dir/.sweep-state.json`` keeps the finished rows, keyed on everything that
changes the numbers (models and weights, n, seed, classes, metrics, reference, extractor,
dtype, device type). The same call again evaluates only the missing psi values (the
unfinished one continues from :func:`~bigganctl.metrics.evaluate.evaluate`'s checkpoint) and
returns at once when everything is done; a call with other settings starts fresh.
"""

from __future__ import annotations

import csv
import datetime as _dt
import functools
import io
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any
from collections.abc import Callable, Iterable, Sequence

import torch

from . import __version__
from ._io import atomic_open, sha256_file, write_json
from .errors import RuntimeFailure, UsageError

DEFAULT_GRID = "0.1:1.0:0.1"
DEFAULT_N = 10_000
DEFAULT_METRICS = ("fid", "is")
DEFAULT_STRIP_COLUMNS = 8
STATE_FILE = ".sweep-state.json"
STATE_VERSION = 1
FILES = {"csv": "sweep.csv", "json": "sweep.json", "plot": "sweep.png", "strip": "strip.png",
         "manifest": "manifest.json"}
COLUMNS = ("psi", "convention", "fid", "is_mean", "is_std", "kid_mean", "kid_std", "n", "seconds")

#: ``on_row(row, earlier)``: a row is finished (``earlier``: kept from a previous run).
OnRow = Callable[[dict, bool], None]
#: ``progress(model, psi, done, total)`` after every batch of the running evaluation.
Progress = Callable[[str, float, int, int], None]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


# ----------------------------------------------------------------------------- inputs

def parse_psis(psis: str | float | Iterable[float], *, option: str = "--trunc") -> list[float]:
    """A grid string (``0.1:1.0:0.1``, ``0.2,0.5,1.0``, combinations) or numbers -> floats."""
    from .parsing import parse_float, parse_grid

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


def _classes_key(classes: Any) -> Any:
    """``balanced`` | ``random`` | the resolved class indices (no model needed)."""
    from .metrics.evaluate import _resolve_class_list

    if isinstance(classes, str) and classes.strip().lower() in ("balanced", "random"):
        return classes.strip().lower()
    return _resolve_class_list(classes)


def _ref_identity(ref: Any) -> dict[str, Any] | None:
    from .metrics.reference import REFERENCES, _unknown_ref

    if ref is None:
        return None
    if str(ref) in REFERENCES:
        return {"name": str(ref)}
    p = Path(str(ref)).expanduser()
    if not p.is_file():
        raise _unknown_ref(str(ref), "--ref")
    return {"sha256": sha256_file(p)}


# ----------------------------------------------------------------------------- state

def _row_key(model: str, psi: float) -> str:
    return f"{model}|{psi!r}"


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
          command: str | None = None) -> dict[str, Any]:
    """Evaluate every (model, psi) on the same samples; write the outputs; return ``sweep.json``.

    ``models``: registered names or folders (default biggan-deep-128); ``weights`` applies
    to every model (``random``, or a file for a single model). ``psis``: a grid string or
    numbers, each checked against the model's convention (DeepMind: (0, 1]). Raises
    UsageError for bad input before anything is loaded.
    """
    from .loader import weights_identity
    from .metrics import stats as S
    from .metrics.evaluate import _check_n, distributed_env, normalize_metrics
    from .metrics.features import extractor_id, resolve_weights, weights_sha256
    from .runtime import dtype_name, resolve_device, resolve_dtype
    from .sampling import check_psi

    note = note or _stderr
    warn = warn or (lambda m: _stderr(f"warning: {m}"))

    # --- validate everything cheap first: no loading, no files written
    wanted = normalize_metrics(metrics)
    grid = parse_psis(psis)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UsageError(f"must be a positive integer, got {n!r}", option="--n")
    _check_n(n, wanted, S.IS_SPLITS)
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
    needs_ref = [m for m in wanted if m in ("fid", "kid")]
    if needs_ref and ref is None:
        raise UsageError(f"{'/'.join(m.upper() for m in needs_ref)} needs reference statistics: a registered "
                         "name (imagenet-64|128|256|512) or a FILE.npz with mu/sigma", option="--ref")
    if distributed_env().active:
        raise UsageError("sweep runs in one process; run `eval` under torchrun per psi instead")
    dev = resolve_device(device)
    dt = dtype_name(resolve_dtype(dtype))
    cls_key = _classes_key(classes)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} exists and is not a folder", option="--out")

    idents = [weights_identity(m, weights, progress=bool(progress)) for m in names]
    for ident in idents:
        for psi in grid:
            check_psi(psi, ident["truncation"])
    multi = len(idents) > 1
    labels = [i["model"] for i in idents]
    if len(set(labels)) != len(labels):
        labels = [str(m) for m in names]      # two folders of the same name: use the paths

    # --- identity of everything that changes the numbers
    ref_id = _ref_identity(ref) if needs_ref else None
    inc_path = resolve_weights(inception_weights, progress=bool(progress))
    inc_sha = weights_sha256(inc_path)
    key = {"v": STATE_VERSION, "models": idents, "n": n, "seed": seed, "classes": cls_key,
           "metrics": list(wanted), "ref": ref_id, "extractor": extractor_id(inc_sha), "dtype": dt,
           "device": dev.type}
    settings = {"n": n, "seed": seed, "seeds": f"{seed}-{seed + n - 1}", "classes": cls_key,
                "metrics": list(wanted), "ref": None if ref is None else str(ref), "extractor_id": key["extractor"],
                "inception_weights_sha256": inc_sha, "dtype": dt, "device": dev.type,
                "is_splits": S.IS_SPLITS if "is" in wanted else None, "strip_columns": min(strip_columns, n)}
    files = {k: v for k, v in FILES.items() if k != "strip" or strip_columns > 0}

    # --- what earlier runs left in DIR
    state_path = out / STATE_FILE
    state = _read_state(state_path) if state_path.is_file() else None
    if state is None and any((out / f).exists() for f in FILES.values()) and not overwrite:
        raise UsageError(f"{out} holds sweep outputs of another run (no {STATE_FILE}); "
                         "pass --overwrite to replace them", option="--out")
    rows_done: dict[str, dict] = {}
    if state is not None and state.get("key") != key:
        warn(f"{out}: settings changed since the last sweep there ({_changed(state.get('key') or {}, key)}); "
             "starting fresh, the earlier rows are dropped")
        state = None
    elif state is not None and not resume:
        note(f"--no-resume: recomputing every row in {out}")
        state = None
    if state is not None:
        rows_done = dict(state["rows"])

    def public(row: dict) -> dict:
        return {k: v for k, v in row.items() if multi or k != "model"}

    pending = [(i, psi) for i in range(len(idents)) for psi in grid if _row_key(labels[i], psi) not in rows_done]
    out_spec = {"psis": grid, "files": sorted(files.values()), "strip_columns": settings["strip_columns"],
                "labels": labels}

    def document() -> dict[str, Any]:
        rows = [public(rows_done[_row_key(labels[i], psi)]) for i in range(len(idents)) for psi in grid]
        return {"kind": "bigganctl.sweep", "psis": grid, "rows": rows,
                "models": [{"model": labels[i], "weights": idents[i]["sha256"],
                            "convention": idents[i]["truncation"], "resolution": idents[i]["resolution"]}
                           for i in range(len(idents))],
                "settings": settings, "files": files, "version": __version__}

    for i in range(len(idents)):
        for psi in grid:
            k = _row_key(labels[i], psi)
            if k in rows_done and on_row is not None:
                on_row(public(rows_done[k]), True)
    if not pending and state is not None and state.get("written") == out_spec \
            and all((out / f).is_file() for f in files.values()):
        note(f"every row is done and {out} is up to date; nothing to evaluate")
        return document()

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RuntimeFailure(f"cannot create {out}: {e.strerror or e}") from None

    def save_state(written: dict | None = None) -> None:
        write_json(state_path, {"version": STATE_VERSION, "key": key, "rows": rows_done, "written": written})

    save_state()

    # --- load once: Inception, reference, each generator
    gens: dict[int, Any] = {}

    def generator(i: int):
        if i not in gens:
            from .loader import load_generator

            gens[i] = load_generator(names[i], weights=weights, device=dev, dtype=dt, progress=bool(progress))
        return gens[i]

    if pending:
        from .metrics.evaluate import evaluate
        from .metrics.features import InceptionFeatures
        from .metrics.reference import load_reference

        fx = InceptionFeatures(inc_path, device=dev)
        ref_stats = load_reference(ref, progress=bool(progress)) if needs_ref else None
        seen: set[str] = set()

        def warn_once(msg: str) -> None:
            if msg not in seen:
                seen.add(msg)
                warn(msg)

        for i, psi in pending:
            G = generator(i)
            cb: Any = functools.partial(progress, labels[i], psi) if callable(progress) else bool(progress)
            res = evaluate(model=G, metrics=wanted, n=n, psi=psi, seed=seed, classes=classes, ref=ref_stats,
                           inception_weights=fx, device=dev, dtype=dt, batch_size=batch_size, resume=resume,
                           progress=cb, force=force, checkpoint_every=checkpoint_every, warn=warn_once)
            row = {"model": labels[i], "psi": psi, "convention": res["trunc_convention"],
                   **{k: res[k] for k in ("fid", "is_mean", "is_std", "kid_mean", "kid_std")},
                   "n": res["n"], "seconds": res["seconds"]}
            rows_done[_row_key(labels[i], psi)] = row
            save_state()
            if on_row is not None:
                on_row(public(row), False)

    # --- outputs
    doc = document()
    for k, f in FILES.items():
        if k not in files and (out / f).is_file():      # e.g. --strip-columns 0 now: no stale strip
            (out / f).unlink()
    strip_info = None
    if "strip" in files:
        strip_info = write_strip(out / files["strip"], [generator(i) for i in range(len(idents))], labels, grid,
                                 n=n, seed=seed, classes=classes, columns=settings["strip_columns"],
                                 batch_size=batch_size)
    plot_sweep(out / files["plot"], doc["rows"] if multi else [{"model": labels[0], **r} for r in doc["rows"]],
               metrics=wanted, title=_title(labels, settings))
    write_csv(out / files["csv"], doc["rows"], multi=multi)
    write_json(out / files["json"], doc)
    write_json(out / files["manifest"], _manifest(doc, idents, gens, strip_info, command))
    save_state(written=out_spec)
    return doc


def _title(labels: Sequence[str], settings: dict) -> str:
    ref = f", ref {Path(settings['ref']).name}" if settings.get("ref") else ""
    return f"{', '.join(labels)}: n={settings['n']}, seeds {settings['seeds']}{ref}"


# ----------------------------------------------------------------------------- files

def write_csv(path: Path, rows: Sequence[dict], *, multi: bool) -> None:
    """One line per row; empty cells for metrics not computed; floats written exactly."""
    cols = (("model",) if multi else ()) + COLUMNS
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        w.writerow(["" if r.get(c) is None else repr(r[c]) if isinstance(r[c], float) else r[c] for c in cols])
    with atomic_open(path, "w") as fh:
        fh.write(buf.getvalue())


def strip_images(G, *, psis: Sequence[float], n: int, seed: int, classes: Any, columns: int,
                 batch_size: int | None = None) -> torch.Tensor:
    """uint8 [len(psis) * columns, 3, R, R]: samples ``0..columns-1`` of the evaluation
    (seeds ``seed..``, the class plan's first classes) at each psi, psi-major."""
    from .generate import iter_uint8
    from .metrics.evaluate import class_plan

    labels = class_plan(classes, n, G.num_classes, seed)[0][:columns]
    seeds = list(range(seed, seed + columns))
    out = torch.empty(len(psis) * columns, 3, G.resolution, G.resolution, dtype=torch.uint8)
    for r, psi in enumerate(psis):
        for off, x in iter_uint8(G, labels, seeds, psi, batch_size=batch_size):
            out[r * columns + off:r * columns + off + x.shape[0]] = x
    return out


def write_strip(path: Path, gens: Sequence[Any], labels: Sequence[str], psis: Sequence[float], *, n: int,
                seed: int, classes: Any, columns: int, batch_size: int | None) -> dict[str, Any]:
    """``strip.png``: one row per (model, psi), model-major; tiles of other resolutions are
    resized (antialiased bilinear) to the first model's."""
    from .media import GRID_PADDING, make_grid, write_image
    from .metrics.evaluate import class_plan

    res = int(gens[0].resolution)
    blocks = []
    for G in gens:
        x = strip_images(G, psis=psis, n=n, seed=seed, classes=classes, columns=columns, batch_size=batch_size)
        if x.shape[-1] != res:
            x = torch.nn.functional.interpolate(x.float(), size=(res, res), mode="bilinear", antialias=True,
                                                align_corners=False).round().clamp(0, 255).to(torch.uint8)
        blocks.append(x)
    write_image(path, make_grid(torch.cat(blocks), columns))
    cls = class_plan(classes, n, gens[0].num_classes, seed)[0][:columns].tolist()
    return {"file": path.name, "rows": [{"model": m, "psi": p} for m in labels for p in psis],
            "columns": columns, "seeds": list(range(seed, seed + columns)), "classes": cls, "tile": res,
            "padding": GRID_PADDING}


def plot_sweep(path: Path, rows: Sequence[dict], *, metrics: Sequence[str], title: str = "") -> None:
    """``sweep.png``: IS against FID (points labelled by psi) and each metric against psi,
    one line per model. Matplotlib's Agg canvas, no pyplot (no global backend state)."""
    from ._io import atomic_path

    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise RuntimeFailure("plotting needs matplotlib: pip install matplotlib") from None

    panels: list[tuple[str, str, str, str | None]] = []     # (x, y, y label, error key)
    if "fid" in metrics and "is" in metrics:
        panels.append(("fid", "is_mean", "IS", "is_std"))
    panels += [("psi", k, lab, err) for m, k, lab, err in (("fid", "fid", "FID", None), ("is", "is_mean", "IS", "is_std"),
                                                            ("kid", "kid_mean", "KID", "kid_std")) if m in metrics]
    fig = Figure(figsize=(4.6 * len(panels), 4.2), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    models = list(dict.fromkeys(r["model"] for r in rows))
    for j, (xk, yk, ylab, errk) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), j + 1)
        for m in models:
            rs = [r for r in rows if r["model"] == m and r.get(xk) is not None and r.get(yk) is not None]
            xs, ys = [r[xk] for r in rs], [r[yk] for r in rs]
            line, = ax.plot(xs, ys, marker="o", label=m)
            if errk and xk == "psi":
                ax.fill_between(xs, [y - (r[errk] or 0) for y, r in zip(ys, rs)],
                                [y + (r[errk] or 0) for y, r in zip(ys, rs)], alpha=0.15, color=line.get_color())
            if xk != "psi":
                for r, x, y in zip(rs, xs, ys):
                    ax.annotate(f"{r['psi']:g}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_xlabel({"fid": "FID (lower is better)", "psi": "truncation psi"}[xk])
        ax.set_ylabel(ylab if xk == "psi" else "IS (higher is better)")
        ax.set_title("IS vs FID (labels: psi)" if xk != "psi" else f"{ylab} vs psi", fontsize=10)
        ax.grid(alpha=0.3)
        ax.ticklabel_format(axis="y", useOffset=False, style="plain")
        if len(models) > 1:
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def _manifest(doc: dict, idents: Sequence[dict], gens: dict, strip: dict | None, command: str | None) -> dict:
    from .sampling import CONVENTIONS

    models = []
    for i, ident in enumerate(idents):
        G = gens.get(i)
        info = dict(getattr(G, "weights_info", None) or {}) if G is not None else {}
        models.append({**{k: ident[k] for k in ("model", "arch", "format", "resolution", "source", "sha256")},
                       "truncation": ident["truncation"], "truncation_rule": CONVENTIONS[ident["truncation"]],
                       "weights_path": info.get("path")})
    return {
        "kind": "bigganctl.sweep",
        "models": models,
        "psis": doc["psis"],
        **doc["settings"],
        "samples": "sample i: seed S+i, class i of the plan (balanced: i mod 1000), the same for every psi",
        "noise": "truncated_noise([seed], z_dim, psi, truncation), per sample",
        "strip": strip,
        "files": doc["files"],
        "command": command,
        "versions": {"bigganctl": __version__, "torch": torch.__version__, "python": platform.python_version()},
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
