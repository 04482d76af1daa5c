"""Markdown summaries for CI pages (``--summary FILE`` of eval, sweep, bench and compare).

Each function returns one Markdown section: the numbers, the gate verdicts and the key
protocol fields. :func:`append` adds it to FILE (created if missing); with
``$GITHUB_STEP_SUMMARY`` as FILE it shows on the GitHub Actions run page.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .metrics.gates import text as gate_text, verdicts


def num(x: Any, digits: int = 4, none: str = "–") -> str:
    """A metric for tables: ``none`` for None, fixed digits, scientific for tiny values."""
    if x is None:
        return none
    if isinstance(x, float):
        return f"{x:.{digits}f}" if abs(x) >= 1e-3 or x == 0 else f"{x:.3e}"
    return str(x)


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _gates(gates: list[tuple[str, bool]]) -> str:
    if not gates:
        return ""
    return "\n\n" + "\n".join(f"- {'✅ passed' if ok else '❌ missed'}: {text}" for text, ok in gates)


def _fields(pairs: list[tuple[str, Any]]) -> str:
    return " · ".join(f"{k} `{v}`" for k, v in pairs if v is not None)


#: gate -> (result key, label, True for an upper bound): the gates of ``bigganctl eval``
_GATES = {"max_fid": ("fid", "FID", True), "min_is": ("is_mean", "IS", False), "max_sfid": ("sfid", "sFID", True),
          "min_precision": ("precision", "precision", False), "min_recall": ("recall", "recall", False)}


def eval_gates(res: dict[str, Any], **gates: float | None) -> list[tuple[str, bool]]:
    """(text, passed) of each gate given (``max_fid``, ``min_is``, ``max_sfid``,
    ``min_precision``, ``min_recall``; the verdicts of ``check_gates``)."""
    return [(gate_text(g, v, b, "≤" if upper else "≥"), ok) for g, v, b, upper, ok in verdicts(res, **gates)]


def eval_section(res: dict[str, Any], gates: list[tuple[str, bool]], title: str) -> str:
    """``res``: the eval document; ``gates``: (text, passed) per gate given."""
    rows = []
    for key, label in (("fid", "FID"), ("sfid", "sFID"), ("is_mean", "IS"), ("kid_mean", "KID"),
                       ("precision", "precision"), ("recall", "recall")):
        if res.get(key) is not None:
            std = res.get(key.replace("_mean", "_std")) if key.endswith("_mean") else None
            rows.append([label, num(res[key], 6 if key == "kid_mean" else 4), num(std, 6) if std is not None else ""])
    subject = res.get("images") or f"{res.get('model')} (weights `{str(res.get('weights'))[:12]}`)"
    proto = _fields([("n", res.get("n")), ("psi", res.get("trunc")), ("classes", res.get("classes")),
                     ("seed", res.get("seed")), ("ref", res.get("ref")), ("extractor", res.get("extractor_id")),
                     ("dtype", res.get("dtype")), ("device", res.get("device"))])
    rate = f", {res['samples_per_second']:.1f} img/s" if res.get("samples_per_second") else ""
    return (f"### {title}\n\n{subject}\n\n" + _table(["metric", "value", "± std"], rows) + _gates(gates)
            + f"\n\n{proto} · {res.get('seconds', 0):.1f} s{rate}\n")


def sweep_section(doc: dict[str, Any], out_dir: Path, title: str) -> str:
    metrics = doc.get("settings", {}).get("metrics", [])
    cols = [("psi", lambda r: f"{r['psi']:g}")]
    if any("model" in r for r in doc["rows"]):
        cols.insert(0, ("model", lambda r: str(r.get("model"))))
    if "fid" in metrics:
        cols.append(("FID", lambda r: num(r.get("fid"))))
    if "is" in metrics:
        cols.append(("IS", lambda r: f"{num(r.get('is_mean'))} ± {num(r.get('is_std'))}"))
    if "kid" in metrics:
        cols.append(("KID", lambda r: num(r.get("kid_mean"), 6)))
    table = _table([c for c, _ in cols], [[f(r) for _, f in cols] for r in doc["rows"]])
    s = doc.get("settings", {})
    proto = _fields([("n", s.get("n")), ("seeds", s.get("seeds")), ("classes", s.get("classes")),
                     ("ref", s.get("ref")), ("extractor", s.get("extractor_id")), ("dtype", s.get("dtype"))])
    models = ", ".join(f"{m['model']} (`{str(m.get('weights'))[:12]}`)" for m in doc.get("models", []))
    plot = doc.get("files", {}).get("plot")
    link = f"\n\nPlot: [{plot}]({out_dir / plot})" if plot and (out_dir / plot).is_file() else ""
    return f"### {title}\n\n{models}\n\n{table}\n\n{proto}{link}\n"


def bench_section(doc: dict[str, Any], gates: list[tuple[str, bool]], title: str) -> str:
    rows = [[kind, num(r.get("images_per_s"), 2), num(r.get("features_per_s"), 2),
             num(r.get("fid50k_s"), 0) if r.get("fid50k_s") is not None else "–"]
            for kind, r in doc.get("runs", {}).items()]
    sysinfo = doc.get("system") or {}
    proto = _fields([("model", doc.get("model")), ("device", doc.get("device")), ("dtype", doc.get("dtype")),
                     ("batch", doc.get("batch_size")), ("n", doc.get("n")), ("threads", doc.get("threads")),
                     ("cpu", sysinfo.get("cpu")), ("isa", sysinfo.get("isa")),
                     ("device name", sysinfo.get("device_name")), ("torch", doc.get("torch"))])
    return (f"### {title}\n\n" + _table(["run", "images/s", "features/s", "FID-50k s"], rows) + _gates(gates)
            + f"\n\nload {num(doc.get('load_s'), 2)} s · peak RSS {num(doc.get('peak_rss_mb'), 0)} MiB\n\n{proto}\n")


def compare_section(report: dict[str, Any], title: str) -> str:
    mark = {"regressed": "❌ regressed", "improved": "⬆ improved", "ok": "✅ ok", "info": "info"}
    rows = []
    for r in report["rows"]:
        rel = f" ({r['change_rel'] * 100:+.1f}%)" if r.get("change_rel") is not None else ""
        sig = f"{r['sigmas']:+.1f}σ" if r.get("sigmas") is not None else ""
        rows.append([f"{r['entry']} {r['metric']}".strip(), num(r["baseline"]), num(r["current"]),
                     f"{r['change']:+.4g}{rel}", r["tolerance"], sig, mark.get(r["verdict"], r["verdict"])])
    table = _table(["metric", "baseline", "current", "change", "tolerance", "Δ/noise", "verdict"], rows)
    head = ("❌ **regression**: " + ", ".join(f"{r['entry']} {r['metric']}".strip() for r in report["rows"]
                                             if r["verdict"] == "regressed")
            if report["verdict"] == "regressed" else "✅ no regression")
    ident = [f"- {i['field']}: `{i['baseline']}` → `{i['current']}`" for i in report["identity"]
             if not i["same"]]
    proto = _fields(sorted(report["protocol"]["fields"].items()))
    forced = ""
    if report["protocol"]["forced"]:
        forced = "\n\n⚠ protocols differ (compared with --force): " + ", ".join(
            d["field"] for d in report["protocol"]["differences"])
    extra = ("\n\nDiffers between the runs:\n" + "\n".join(ident)) if ident else ""
    plots = " · ".join(f"[{side} plot]({links['plot']})" for side, links in report.get("links", {}).items()
                       if links.get("plot"))
    return (f"### {title}\n\n{head}\n\n{table}{forced}{extra}\n\nProtocol: {proto}\n"
            f"\nBaseline `{report['baseline']}`, current `{report['current']}`"
            + (f" · {plots}" if plots else "") + "\n")


def refusal_section(differences: list[dict[str, Any]], baseline: str, current: str) -> str:
    """``compare`` refused: the protocols differ (exit 2)."""
    rows = [[d["field"], f"`{d['baseline']}`", f"`{d['current']}`"] for d in differences]
    return (f"### bigganctl compare\n\n⛔ not compared: the protocols differ (`{baseline}` vs `{current}`; "
            "--force compares anyway)\n\n" + _table(["field", "baseline", "current"], rows) + "\n")


def append(path: str | os.PathLike, section: str) -> None:
    """Append ``section`` (one write, so a reader never sees half of it) to ``path``."""
    p = Path(path)
    if p.parent and not p.parent.is_dir():
        p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "a", encoding="utf-8") as fh:
        fh.write(section if section.endswith("\n\n") else section + "\n")
