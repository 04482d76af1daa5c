"""The plan of a sweep and its resume state (:mod:`bigganctl.api.sweep`): every input
checked and the identity of everything that changes the numbers fixed before anything is
loaded; ``.sweep-state.json`` (the finished rows under that key) read back."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .. import __version__
from .._io import sha256_file
from ..checks import check_int
from ..errors import UsageError
from ..integrity import json_verified, seal_json
from ..metrics import maths as S
from ..metrics.evaluation import (METRIC_VERSION, Protocol, check_n, kid_if_available, normalize_metrics,
                                  optional_metrics)
from ..metrics.features import extractor_id, resolve_weights, weights_sha256
from ..metrics.reference import REFERENCES, unknown_ref
from ..parsing import parse_float, parse_grid
from ..progress import Reporter
from ..runtime.device import dtype_name, resolve_device, resolve_dtype
from ..noise import check_psi, plan_key
from ..types import Classes, Device, Dtype

DEFAULT_GRID = "0.1:1.0:0.1"
DEFAULT_N = 10_000
DEFAULT_METRICS = ("fid", "is")
DEFAULT_STRIP_COLUMNS = 8
STATE_FILE = ".sweep-state.json"
STATE_VERSION = 2                # 2: sealed with a digest of itself
FILES = {"csv": "sweep.csv", "json": "sweep.json", "plot": "sweep.png", "strip": "strip.png",
         "manifest": "manifest.json"}


# ----------------------------------------------------------------------------- inputs

def parse_psis(psis: str | float | Iterable[float], *, option: str = "psi") -> list[float]:
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
        raise UsageError("empty grid (expected e.g. 0.1:1.0:0.1 or 0.2,0.5,1.0)", param=option)
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
    classes: Classes
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


def plan(models: str | Sequence[str] | None, psis: str | Iterable[float], n: int, ref: str | os.PathLike | None,
         metrics: str | Iterable[str], seed: int, classes: Classes, weights: str | None,
         out_dir: str | os.PathLike, inception_weights: str | os.PathLike | None, device: Device, dtype: Dtype, batch_size: int | None,
         strip_columns: int, progress: Reporter | None) -> Plan:
    """Validate every input (UsageError naming the option) and fix the identity of
    everything that changes the numbers (the resume key)."""
    wanted = normalize_metrics(metrics)
    grid = parse_psis(psis)
    check_n(n, wanted, S.IS_SPLITS, optional=optional_metrics(metrics))
    check_int(seed, "seed", minimum=0)
    check_int(strip_columns, "strip_columns", minimum=0)
    check_int(batch_size, "batch_size", optional=True)
    names = [models] if isinstance(models, (str, os.PathLike)) else list(models or ["biggan-deep-128"])
    if len(set(map(str, names))) != len(names):
        raise UsageError("the same model is given twice", param="models")
    if weights is not None and str(weights) != "random" and len(names) > 1:
        raise UsageError("a weights file belongs to one model; compare trained models as folders "
                         "(--model DIR) or use --weights random", param="weights")
    protocol = Protocol(wanted, kid_optional=kid_if_available(metrics), optional=optional_metrics(metrics))
    if protocol.needs_ref and ref is None:
        raise UsageError(f"{'/'.join(m.upper() for m in protocol.needs_ref)} needs reference statistics: a "
                         "registered name (imagenet-64|128|256|512) or a FILE.npz with mu/sigma", param="ref")
    dev, dt = resolve_device(device), dtype_name(resolve_dtype(dtype))
    cls_key = plan_key(classes)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} exists and is not a folder", param="out_dir")

    from ..weights.loader import weights_identity

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

def _read_state(path: Path) -> tuple[dict | None, str | None]:
    """(the state, None) or (None, why it cannot be used: unreadable, or altered since
    written: it carries a digest of itself, :func:`bigganctl.integrity.seal_json`)."""
    try:
        st = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        return None, f"unreadable ({e.__class__.__name__})"
    if not (isinstance(st, dict) and isinstance(st.get("rows"), dict)):
        return None, "not a sweep state"
    if not json_verified(st):
        return None, "its content does not match its digest (altered or damaged)"
    return st, None


def seal_state(doc: dict) -> dict:
    """The state document as written (with its digest)."""
    return seal_json(doc)


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
    state, damaged = _read_state(state_path) if state_path.is_file() else (None, None)
    if damaged:
        warn(f"{state_path} not used: {damaged}; starting fresh, every row is recomputed")
    elif state is None and any((p.out / f).exists() for f in FILES.values()) and not overwrite:
        raise UsageError(f"{p.out} holds sweep outputs of another run (no {STATE_FILE}); "
                         "pass --overwrite to replace them", param="out_dir")
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
            "settings": p.settings, "files": p.files, "version": __version__, "metric_version": METRIC_VERSION}


def public(p: Plan, row: dict) -> dict:
    return {k: v for k, v in row.items() if p.multi or k != "model"}


def written_key(p: Plan) -> dict[str, Any]:
    """What the last writing of the outputs covered (``written`` in the state file)."""
    return {"psis": p.grid, "files": sorted(p.files.values()), "strip_columns": p.settings["strip_columns"],
            "labels": p.labels}


def resume_point(p: Plan, *, resume: bool, overwrite: bool, note: Callable[[str], None],
                  warn: Callable[[str], None]) -> tuple[dict | None, bool]:
    """(the earlier state to continue, whether every row and file is already done)."""
    state = earlier_state(p, resume=resume, overwrite=overwrite, note=note, warn=warn)
    rows_done = state["rows"] if state is not None else {}
    pending = any(p.row_key(i, psi) not in rows_done for i, psi in p.rows())
    done = (not pending and state is not None and state.get("written") == written_key(p)
            and all((p.out / f).is_file() for f in p.files.values()))
    return state, done
