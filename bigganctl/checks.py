"""The one integer check of user values: every count, size and seed a caller passes goes
through :func:`check_int`, which names the Python parameter (the CLI shows its flag)."""

from __future__ import annotations

import operator
from typing import Any

from .errors import UsageError


def check_int(value: Any, param: str, *, minimum: int = 1, optional: bool = False) -> int | None:
    """``value`` as an ``int`` >= ``minimum`` (any integral number, not a bool); ``None``
    passes when ``optional``. Raises UsageError naming ``param``.

    >>> check_int(3, "n")
    3
    >>> check_int(None, "batch_size", optional=True) is None
    True
    """
    if value is None and optional:
        return None
    try:
        if isinstance(value, bool):
            raise TypeError
        number = operator.index(value)
    except TypeError:
        number = None
    if number is None or number < minimum:
        want = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise UsageError(f"must be {want}, got {value!r}", param=param)
    return number
