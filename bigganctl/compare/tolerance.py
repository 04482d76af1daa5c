"""Tolerances for ``bigganctl compare``: which way is worse, and by how much is too much.

A tolerance is written ``METRIC=VALUE``::

    fid=2%            FID may rise by 2 % of the baseline (FID: lower is better)
    images_per_s=-10% throughput may drop by 10 %
    fid=+0.5          FID may rise by 0.5 (absolute)
    kid_mean=0.001    absolute, in the metric's own direction
    seconds=off       never a verdict for this metric

A leading ``+`` means "a rise is worse", ``-`` "a drop is worse"; without a sign the
metric's known direction applies (:data:`DEFAULTS`), and an unknown metric is two-sided (any
change beyond the tolerance is a regression). ``is`` and ``kid`` name ``is_mean`` and
``kid_mean``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import UsageError

LOWER = "lower"      # lower is better: a rise is worse
HIGHER = "higher"    # higher is better: a drop is worse
BOTH = "both"        # any change is worse


@dataclass(frozen=True)
class Tolerance:
    direction: str
    value: float | None            # None: no verdict ("off" or no default)
    relative: bool = True

    def text(self) -> str:
        if self.value is None:
            return "-"
        sign = {LOWER: "+", HIGHER: "-", BOTH: "±"}[self.direction]
        return f"{sign}{self.value * 100:g}%" if self.relative else f"{sign}{self.value:g}"


#: Known metrics: direction and default tolerance. FID/KID/sFID: lower is better; IS,
#: precision, recall, throughput: higher is better. Timings of a whole run (seconds, load,
#: warm-up) and memory are shown but not judged unless a --tol names them.
DEFAULTS: dict[str, Tolerance] = {
    "fid": Tolerance(LOWER, 0.05),
    "sfid": Tolerance(LOWER, 0.05),
    "kid_mean": Tolerance(LOWER, 0.10),
    "is_mean": Tolerance(HIGHER, 0.05),
    "precision": Tolerance(HIGHER, 0.02, relative=False),
    "recall": Tolerance(HIGHER, 0.02, relative=False),
    "images_per_s": Tolerance(HIGHER, 0.10),
    "features_per_s": Tolerance(HIGHER, 0.10),
    "fid50k_s": Tolerance(LOWER, 0.10),
    "samples_per_second": Tolerance(HIGHER, None),
    "seconds": Tolerance(LOWER, None),
    "load_s": Tolerance(LOWER, None),
    "warmup_s": Tolerance(LOWER, None),
    "features_warmup_s": Tolerance(LOWER, None),
    "peak_rss_mb": Tolerance(LOWER, None),
}

ALIASES = {"is": "is_mean", "kid": "kid_mean"}

_SPEC = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*([+-]?)\s*([0-9.eE+-]+|off|none)\s*(%?)\s*$")


def metric_name(name: str) -> str:
    return ALIASES.get(name, name)


def direction_of(metric: str) -> str:
    known = DEFAULTS.get(metric)
    return known.direction if known else BOTH


def parse_tolerance(text: str, *, option: str = "--tol") -> tuple[str, Tolerance]:
    """``"fid=2%"`` -> ``("fid", Tolerance(LOWER, 0.02))``; UsageError for anything else.

    >>> parse_tolerance("images_per_s=-10%")
    ('images_per_s', Tolerance(direction='higher', value=0.1, relative=True))
    """
    m = _SPEC.match(text)
    if m is None:
        raise UsageError(f"{text!r} is not METRIC=VALUE[%] (e.g. fid=2%, images_per_s=-10%, fid=+0.5, "
                         "seconds=off)", option=option)
    name, sign, value, pct = metric_name(m.group(1)), m.group(2), m.group(3), m.group(4)
    direction = {"+": LOWER, "-": HIGHER}.get(sign) or direction_of(name)
    if value in ("off", "none"):
        return name, Tolerance(direction, None)
    try:
        v = float(value)
    except ValueError:
        raise UsageError(f"{text!r}: {value!r} is not a number", option=option) from None
    if not v >= 0 or v == float("inf"):
        raise UsageError(f"{text!r}: the tolerance must be a finite number >= 0 (its sign goes in front)",
                         option=option)
    return name, Tolerance(direction, v / 100 if pct else v, relative=bool(pct))


def tolerances(specs: list[str] | None, *, option: str = "--tol") -> dict[str, Tolerance]:
    """The defaults, overridden by the ``--tol`` values (later ones win)."""
    out = dict(DEFAULTS)
    for spec in specs or []:
        for part in filter(None, (s.strip() for s in spec.split(","))):
            name, tol = parse_tolerance(part, option=option)
            out[name] = tol
    return out


def worse_by(tol: Tolerance, base: float, cur: float) -> float:
    """How much worse ``cur`` is than ``base`` in the tolerance's units (negative: better)."""
    d = {LOWER: cur - base, HIGHER: base - cur, BOTH: abs(cur - base)}[tol.direction]
    if not tol.relative:
        return d
    if base == 0:
        return 0.0 if d == 0 else (float("inf") if d > 0 else float("-inf"))
    return d / abs(base)


def verdict(tol: Tolerance, base: float, cur: float) -> str:
    """``regressed`` beyond the tolerance, ``improved`` beyond it the other way, else ``ok``;
    ``info`` when there is no tolerance."""
    if tol.value is None:
        return "info"
    w = worse_by(tol, base, cur)
    if w > tol.value:
        return "regressed"
    if tol.direction != BOTH and -w > tol.value:
        return "improved"
    return "ok"
