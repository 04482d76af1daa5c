"""Small pure parsers for the command-line mini-syntaxes.

Each raises :class:`bigganctl.errors.UsageError` (exit 2) naming the option.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation

from .errors import UsageError

MAX_SEED = 2**63 - 1


def parse_range(text: str, *, option: str = "seeds") -> list[int]:
    """Parse a list of non-negative integers and inclusive ranges, in the given order.

    >>> parse_range("0-3,7")
    [0, 1, 2, 3, 7]
    >>> parse_range("10")
    [10]
    """
    out: list[int] = []
    parts = [p.strip() for p in str(text).split(",")]
    if not parts or any(p == "" for p in parts):
        raise UsageError(f"empty item in {text!r} (expected e.g. 0-15,20)", param=option)
    for p in parts:
        lo, sep, hi = p.partition("-")
        try:
            a = int(lo)
            b = int(hi) if sep else a
        except ValueError:
            raise UsageError(f"{p!r} is not an integer or range like 0-15", param=option) from None
        if a < 0 or b < 0:
            raise UsageError(f"{p!r}: values must be >= 0", param=option)
        if b < a:
            raise UsageError(f"range {p!r} is empty (start > end)", param=option)
        if b > MAX_SEED:
            raise UsageError(f"{p!r}: values must be < 2**63", param=option)
        if b - a > 10_000_000:
            raise UsageError(f"range {p!r} is too long", param=option)
        out.extend(range(a, b + 1))
    return out


def parse_float(text: str, *, option: str) -> float:
    """A finite float, or UsageError."""
    try:
        v = float(text)
    except (TypeError, ValueError):
        raise UsageError(f"{text!r} is not a number", param=option) from None
    if not math.isfinite(v):
        raise UsageError(f"{text!r} is not a finite number", param=option)
    return v


def parse_grid(text: str, *, option: str = "psi") -> list[float]:
    """Parse a grid of floats: ``start:stop:step`` (stop inclusive, decimal-exact) and
    comma-separated values, combined in the given order; duplicates are dropped.

    >>> parse_grid("0.1:0.5:0.1")
    [0.1, 0.2, 0.3, 0.4, 0.5]
    >>> parse_grid("0.2,0.5:0.7:0.1,1")
    [0.2, 0.5, 0.6, 0.7, 1.0]
    """
    items = [p.strip() for p in str(text).split(",")]
    if not items or all(p == "" for p in items):
        raise UsageError("empty grid (expected e.g. 0.1:1.0:0.1 or 0.2,0.5,1.0)", param=option)
    values: list[Decimal] = []
    for item in items:
        if item == "":
            raise UsageError(f"empty item in {text!r}", param=option)
        fields = item.split(":")
        try:
            nums = [Decimal(f) for f in fields]
        except InvalidOperation:
            raise UsageError(f"{item!r} is not a number or start:stop:step", param=option) from None
        if any(not n.is_finite() for n in nums):
            raise UsageError(f"{item!r} is not finite", param=option)
        if len(nums) == 1:
            values.append(nums[0])
        elif len(nums) == 3:
            start, stop, step = nums
            if step <= 0:
                raise UsageError(f"{item!r}: step must be > 0", param=option)
            if stop < start:
                raise UsageError(f"{item!r}: stop is below start", param=option)
            count = int((stop - start) / step) + 1
            if count > 10_000:
                raise UsageError(f"{item!r} has too many values", param=option)
            values.extend(start + i * step for i in range(count))
        else:
            raise UsageError(f"{item!r}: expected start:stop:step", param=option)
    out: list[float] = []
    for v in values:
        f = float(v)
        if f not in out:
            out.append(f)
    return out


def split_csv(values: list[str] | tuple[str, ...] | None) -> list[str]:
    """Flatten repeatable, comma-separated option values: ['a,b', 'c'] -> ['a', 'b', 'c']."""
    out: list[str] = []
    for v in values or ():
        out.extend(p.strip() for p in str(v).split(",") if p.strip())
    return out


def range_text(seeds: list[int] | tuple[int, ...]) -> str:
    """The inverse of :func:`parse_range`: consecutive runs as ``a-b``.

    >>> range_text([0, 1, 2, 5, 7, 8])
    '0-2,5,7-8'
    """
    parts: list[str] = []
    i = 0
    while i < len(seeds):
        j = i
        while j + 1 < len(seeds) and seeds[j + 1] == seeds[j] + 1:
            j += 1
        parts.append(str(seeds[i]) if i == j else f"{seeds[i]}-{seeds[j]}")
        i = j + 1
    return ",".join(parts)
