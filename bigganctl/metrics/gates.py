"""Quality gates of ``eval`` and ``sweep``: which result each gate reads, and its verdict."""

from __future__ import annotations

from typing import Any

#: gate -> (result key, label, True for an upper bound)
GATES = {"max_fid": ("fid", "FID", True), "min_is": ("is_mean", "IS", False), "max_sfid": ("sfid", "sFID", True),
         "min_precision": ("precision", "precision", False), "min_recall": ("recall", "recall", False)}


def verdicts(result: dict[str, Any], **gates: float | None) -> list[tuple[str, float, float, bool, bool]]:
    """``(gate, value, bound, upper, passed)`` of every gate given a bound whose metric was
    computed (a null metric is not judged)."""
    out = []
    for gate, bound in gates.items():
        key, _, upper = GATES[gate]
        v = result.get(key)
        if bound is not None and v is not None:
            out.append((gate, v, bound, upper, bool(v <= bound if upper else v >= bound)))
    return out


def text(gate: str, value: float, bound: float, relation: str) -> str:
    """``"FID 12.3000 <= --max-fid 15"`` for a relation such as ``<=``."""
    return f"{GATES[gate][1]} {value:.4f} {relation} --{gate.replace('_', '-')} {bound:g}"
