"""Output helpers: results to stdout, everything else (progress, notes, errors) to stderr."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

# soft_wrap: never hard-wrap messages, so an error stays one line whatever the terminal width.
err = Console(stderr=True, highlight=False, soft_wrap=True)


def emit_json(obj: Any) -> None:
    """Print exactly one JSON document on stdout."""
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")
    sys.stdout.flush()


def note(msg: str, *, quiet: bool = False) -> None:
    if not quiet:
        err.print(msg)


def warn(msg: str) -> None:
    err.print(f"[yellow]warning:[/yellow] {msg}")


def fmt_number(x: Any, digits: int = 4) -> str:
    """A metric for tables: ``-`` for None, fixed digits, scientific for tiny values."""
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}f}" if abs(x) >= 1e-3 or x == 0 else f"{x:.3e}"
    return str(x)
