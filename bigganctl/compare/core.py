"""``bigganctl compare``: a result against a baseline, metric by metric.

::

    report = compare(load("baseline.json"), load("current.json"), tolerances(["fid=2%"]))
    report["verdict"]      # "ok" | "regressed"

The two results must share their protocol (N, reference, extractor weights, psi, class
plan, resolution, metric version; for bench the workload and the machine): otherwise
:class:`ProtocolMismatch` (exit 2) names the fields, unless ``force``. Generator weights,
versions, seeds and devices may differ; the report lists them side by side.
"""

from __future__ import annotations

import math
from typing import Any

from .. import __version__
from ..errors import UsageError
from .results import Result
from .tolerance import BOTH, Tolerance, direction_of, verdict

KIND = "bigganctl.compare"


class ProtocolMismatch(UsageError):
    """The two results were not measured the same way: exit 2, naming each differing field."""

    def __init__(self, differences: list[dict[str, Any]]):
        what = "; ".join(f"{d['field']}: baseline {_short(d['baseline'])}, current {_short(d['current'])}"
                         for d in differences)
        super().__init__(f"the protocols differ ({what})",
                         hint="compare results of the same protocol, or pass --force to compare anyway")
        self.differences = differences


def _short(v: Any) -> str:
    s = str(v)
    return s if len(s) <= 60 else s[:57] + "..."


def protocol_differences(base: Result, cur: Result) -> list[dict[str, Any]]:
    """Fields of the protocol whose values differ (a field only one side records is skipped)."""
    out = []
    for k in base.protocol:
        if k in cur.protocol and base.protocol[k] is not None and cur.protocol[k] is not None \
                and base.protocol[k] != cur.protocol[k]:
            out.append({"field": k, "baseline": base.protocol[k], "current": cur.protocol[k]})
    return out


def _noise(metric: str, entry: str, base: Result, cur: Result,
           noise: dict[str, float]) -> tuple[float | None, str | None]:
    """(sigma, where it comes from): ``--noise`` first, else the runs' own std (RMS of the two)."""
    if metric in noise:
        return noise[metric], "--noise"
    a = base.spread.get(entry, {}).get(metric)
    b = cur.spread.get(entry, {}).get(metric)
    if a is not None and b is not None and (a > 0 or b > 0):
        return math.sqrt((a * a + b * b) / 2), "run std"
    return None, None


def _row(entry: str, metric: str, b: float, c: float, tol: Tolerance, sigma: float | None,
         source: str | None) -> dict[str, Any]:
    change = c - b
    return {"entry": entry, "metric": metric, "baseline": b, "current": c, "change": change,
            "change_rel": change / abs(b) if b != 0 else None, "direction": tol.direction,
            "tolerance": tol.text(), "noise": sigma, "noise_source": source,
            "sigmas": change / sigma if sigma else None, "verdict": verdict(tol, b, c)}


def metric_rows(base: Result, cur: Result, tols: dict[str, Tolerance],
                noise: dict[str, float] | None = None) -> tuple[list[dict], list[str], list[str]]:
    """(rows, entry/metric only in the baseline, only in the current)."""
    noise = noise or {}
    rows, only_b, only_c = [], [], []
    for entry in list(base.metrics) + [e for e in cur.metrics if e not in base.metrics]:
        bm, cm = base.metrics.get(entry, {}), cur.metrics.get(entry, {})
        for metric in list(bm) + [m for m in cm if m not in bm]:
            label = f"{entry} {metric}".strip()
            if metric not in cm:
                only_b.append(label)
                continue
            if metric not in bm:
                only_c.append(label)
                continue
            tol = tols.get(metric) or Tolerance(direction_of(metric) if metric in tols else BOTH, None)
            rows.append(_row(entry, metric, bm[metric], cm[metric], tol,
                             *_noise(metric, entry, base, cur, noise)))
    return rows, only_b, only_c


def identity_rows(base: Result, cur: Result) -> list[dict[str, Any]]:
    keys = list(base.identity) + [k for k in cur.identity if k not in base.identity]
    return [{"field": k, "baseline": base.identity.get(k), "current": cur.identity.get(k),
             "same": base.identity.get(k) == cur.identity.get(k)} for k in keys]


def compare(base: Result, cur: Result, tols: dict[str, Tolerance], *, force: bool = False,
            noise: dict[str, float] | None = None) -> dict[str, Any]:
    """The report ``bigganctl compare --json`` prints. Raises UsageError when the kinds
    differ, :class:`ProtocolMismatch` when the protocols do (unless ``force``)."""
    if base.kind != cur.kind:
        raise UsageError(f"cannot compare a {base.kind} result ({base.source}) with a {cur.kind} result "
                         f"({cur.source})", option="CURRENT")
    diffs = protocol_differences(base, cur)
    if diffs and not force:
        raise ProtocolMismatch(diffs)
    rows, only_b, only_c = metric_rows(base, cur, tols, noise)
    if not rows:
        raise UsageError(f"{base.source} and {cur.source} have no metric in common", option="CURRENT")
    regressed = [r for r in rows if r["verdict"] == "regressed"]
    return {
        "kind": KIND, "result_kind": base.kind, "baseline": base.source, "current": cur.source,
        "protocol": {"same": not diffs, "forced": bool(diffs and force), "differences": diffs,
                     "fields": {k: cur.protocol[k] for k in cur.protocol if k in base.protocol}},
        "identity": identity_rows(base, cur),
        "rows": rows, "only_baseline": only_b, "only_current": only_c,
        "regressions": len(regressed), "verdict": "regressed" if regressed else "ok",
        "links": {"baseline": base.links, "current": cur.links},
        "version": __version__,
    }


def parse_noise(specs: list[str] | None, *, option: str = "--noise") -> dict[str, float]:
    """``["fid=0.8", "is=0.02"]`` -> ``{"fid": 0.8, "is_mean": 0.02}`` (seed-to-seed std)."""
    from .tolerance import metric_name

    out: dict[str, float] = {}
    for spec in specs or []:
        for part in filter(None, (s.strip() for s in spec.split(","))):
            name, _, value = part.partition("=")
            try:
                v = float(value)
            except ValueError:
                v = float("nan")
            if not name.strip() or not (v > 0 and math.isfinite(v)):
                raise UsageError(f"{part!r} is not METRIC=STD with STD > 0 (e.g. fid=0.8)", option=option)
            out[metric_name(name.strip())] = v
    return out
