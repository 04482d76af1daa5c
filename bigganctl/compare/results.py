"""Any bigganctl result, read into one shape for ``bigganctl compare``.

Inputs: the ``--json`` document of ``eval``, ``sweep``, ``bench`` or ``stats info``, and the
files ``sweep`` writes (``sweep.json``, ``sweep.csv``, or its ``--out`` folder). Each becomes
a :class:`Result`: numbered metrics per entry (one entry for eval, bench runs, sweep rows),
their spreads where the document has them, the protocol fields that must agree, and the
identity fields that may differ (generator weights, versions) and are shown side by side.

Metrics are found generically: every numeric key that is not a known protocol or run field
is one, so a metric a later version adds (sfid, precision, recall) is compared as it is.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError

#: Optional: the version of the metric definitions in eval/sweep documents (bumped when a
#: metric's definition changes; documents without it are not checked on it).
METRIC_VERSION_KEY = "metric_version"

#: Numeric keys of an eval document that are settings, not results.
_EVAL_NOT_METRICS = {"n", "trunc", "seed", "resolution", "is_splits", "kid_subsets", "kid_subset_size",
                     "world_size", "batch_size", "resumed_from", "pr_k", "pr_reference_count", METRIC_VERSION_KEY}
#: eval: fields that must agree (the protocol).
_EVAL_PROTOCOL = ("n", "ref", "ref_extractor", "extractor_id", "trunc", "trunc_convention", "classes",
                  "resolution", "is_splits", "is_shuffle", "is_rule", "kid_subsets", "kid_subset_size",
                  "pr_k", "pr_distances", "pr_reference_count", METRIC_VERSION_KEY)
#: eval: fields shown for both runs, never refused.
_EVAL_IDENTITY = ("model", "weights", "images", "seed", "dtype", "device", "version")

#: sweep rows: keys that are not metrics.
_SWEEP_NOT_METRICS = {"psi", "n"}
_SWEEP_PROTOCOL = ("n", "classes", "ref", "extractor_id", "is_splits", METRIC_VERSION_KEY)
_SWEEP_IDENTITY = ("seed", "dtype", "device")

#: bench: run fields that are settings; the protocol (workload and machine).
_BENCH_NOT_METRICS = {"n", "batch_size", "psi", "threads"}
_BENCH_PROTOCOL = ("model", "dtype", "device", "n", "batch_size", "psi", "compiled", "threads")
#: bench: the machine (``system`` in the document), refused across machines unless --force.
_BENCH_MACHINE = ("cpu", "isa", "device_name", "torch", "cuda")

_STATS_PROTOCOL = ("extractor_id", "resolution", "dim", "layer", "preprocessing")


@dataclass
class Result:
    """One result, normalised. ``metrics[entry][name]``: a number; ``spread[entry][name]``:
    the std the document gives for it (IS over splits, KID over subsets)."""

    kind: str
    source: str
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    spread: dict[str, dict[str, float]] = field(default_factory=dict)
    protocol: dict[str, Any] = field(default_factory=dict)
    identity: dict[str, Any] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _numbers(d: dict[str, Any], skip: set[str]) -> tuple[dict[str, float], dict[str, float]]:
    """(metrics, spreads): ``X_std`` is the spread of ``X_mean`` (or of ``X``), not a metric."""
    metrics, spread = {}, {}
    for k, v in d.items():
        if k in skip or not is_number(v):
            continue
        if k.endswith("_std"):
            base = k[:-4]
            spread[f"{base}_mean" if f"{base}_mean" in d else base] = float(v)
        else:
            metrics[k] = float(v)
    return metrics, spread


def _ref_name(ref: Any) -> Any:
    """A reference as the protocol sees it: a registered name, or a file's name (the same
    statistics may sit in another folder on another runner)."""
    return Path(ref).name if isinstance(ref, str) and ("/" in ref or ref.endswith(".npz")) else ref


def from_eval(doc: dict[str, Any], source: str) -> Result:
    metrics, spread = _numbers(doc, _EVAL_NOT_METRICS)
    proto = {k: doc.get(k) for k in _EVAL_PROTOCOL if k in doc}
    if "ref" in proto:
        proto["ref"] = _ref_name(proto["ref"])
    return Result("eval", source, {"": metrics}, {"": spread}, proto,
                  {k: doc.get(k) for k in _EVAL_IDENTITY if k in doc})


def _row_label(row: dict[str, Any], multi: bool) -> str:
    psi = f"psi={float(row['psi']):g}"
    return f"{row['model']} {psi}" if multi and row.get("model") else psi


def _sweep_rows(rows: list[dict[str, Any]], res: Result) -> None:
    multi = len({r.get("model") for r in rows}) > 1
    for r in rows:
        label = _row_label(r, multi)
        res.metrics[label], res.spread[label] = _numbers(r, _SWEEP_NOT_METRICS | {"model"})
    res.protocol["psi"] = sorted({_row_label(r, multi) for r in rows})
    ns = {r.get("n") for r in rows}
    if len(ns) == 1:
        res.protocol["n"] = ns.pop()


def from_sweep(doc: dict[str, Any], source: str) -> Result:
    settings = doc.get("settings", {})
    res = Result("sweep", source)
    _sweep_rows(doc.get("rows", []), res)
    res.protocol.update({k: settings[k] for k in _SWEEP_PROTOCOL if k in settings})
    if METRIC_VERSION_KEY in doc:
        res.protocol[METRIC_VERSION_KEY] = doc[METRIC_VERSION_KEY]
    if "ref" in res.protocol:
        res.protocol["ref"] = _ref_name(res.protocol["ref"])
    models = doc.get("models", [])
    res.protocol["resolution"] = [m.get("resolution") for m in models]
    res.protocol["convention"] = sorted({str(m.get("convention")) for m in models})   # as a CSV tells it
    res.identity = {k: settings.get(k) for k in _SWEEP_IDENTITY if k in settings}
    res.identity["model"] = [m.get("model") for m in models]
    res.identity["weights"] = [m.get("weights") for m in models]
    res.identity["version"] = doc.get("version")
    plot = doc.get("files", {}).get("plot")
    if plot and Path(source).parent.joinpath(plot).is_file():
        res.links["plot"] = str(Path(source).parent / plot)
    return res


def from_sweep_csv(path: Path) -> Result:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or "psi" not in rows[0]:
        raise UsageError(f"{path} is not a sweep.csv (no psi column)", option="BASELINE/CURRENT")
    parsed = []
    for r in rows:
        row: dict[str, Any] = {}
        for k, v in r.items():
            try:
                row[k] = float(v) if k not in ("model", "convention") and v != "" else (v or None)
            except ValueError:
                row[k] = v
        if row.get("n") is not None:
            row["n"] = int(row["n"])
        parsed.append(row)
    res = Result("sweep", str(path))
    _sweep_rows(parsed, res)
    res.protocol["convention"] = sorted({str(r.get("convention")) for r in parsed})
    sibling = path.with_name("sweep.png")
    if sibling.is_file():
        res.links["plot"] = str(sibling)
    return res


def from_bench(doc: dict[str, Any], source: str) -> Result:
    res = Result("bench", source)
    top, _ = _numbers({k: doc.get(k) for k in ("load_s", "peak_rss_mb")}, set())
    res.metrics[""] = top
    for kind, run in (doc.get("runs") or {}).items():
        res.metrics[kind], res.spread[kind] = _numbers(run, _BENCH_NOT_METRICS)
    res.protocol = {k: doc.get(k) for k in _BENCH_PROTOCOL if k in doc}
    res.protocol["device"] = str(doc.get("device", "")).split(":")[0]
    system = doc.get("system") or {}
    res.protocol.update({f"system.{k}": system.get(k) for k in _BENCH_MACHINE if k in system})
    weights = doc.get("weights")
    res.identity = {"weights": weights.get("sha256") if isinstance(weights, dict) else weights,
                    "torch": doc.get("torch"), "python": doc.get("python"), "version": doc.get("version")}
    return res


def from_stats(doc: dict[str, Any], source: str) -> Result:
    metrics, _ = _numbers(doc, {"dim", "resolution"})
    return Result("stats", source, {"": metrics}, {"": {}},
                  {k: doc.get(k) for k in _STATS_PROTOCOL if k in doc},
                  {k: doc.get(k) for k in ("name", "path", "source", "sha256") if k in doc})


def kind_of(doc: Any) -> str | None:
    """eval | sweep | bench | stats, or None for anything else."""
    if not isinstance(doc, dict):
        return None
    if doc.get("kind") == "bigganctl.sweep":
        return "sweep"
    if "runs" in doc and "images_per_s" in doc:
        return "bench"
    if "extractor_id" in doc and isinstance(doc.get("metrics"), list):
        return "eval"
    if "mu_norm" in doc or "trace_sigma" in doc or ("extractor_id" in doc and "dim" in doc):
        return "stats"
    return None


_READERS = {"eval": from_eval, "sweep": from_sweep, "bench": from_bench, "stats": from_stats}


def load(path: str | Path, *, option: str = "BASELINE") -> Result:
    """Read one result file (or a sweep's --out folder); UsageError (exit 2) when it is not one."""
    p = Path(path)
    if p.is_dir():
        if not (p / "sweep.json").is_file():
            raise UsageError(f"{p} is a folder without sweep.json", option=option)
        p = p / "sweep.json"
    if not p.is_file():
        raise UsageError(f"{p}: no such file", option=option)
    if p.suffix.lower() == ".csv":
        return from_sweep_csv(p)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UsageError(f"{p} is not JSON ({e})", option=option) from None
    kind = kind_of(doc)
    if kind is None:
        raise UsageError(f"{p} is not the --json output of eval, sweep, bench or stats info", option=option)
    return _READERS[kind](doc, str(p))
