"""Progress: one shape for the whole core (no drawing here).

A core loop reports through a *reporter*, or through nothing::

    with task(progress, "eval fid/is", total=n, initial=done, unit="img") as step:
        for ...:
            step(done)                       # after every batch

``progress`` is a :class:`Reporter` (``reporter(label, total=, initial=, unit=)`` returns a
context manager yielding ``step(done)``) or None/False for silence. The core never draws:
the CLI passes a rich reporter (:func:`bigganctl.cli.render.rich_reporter`), the Python API a
``tqdm.auto`` one (:func:`tqdm_reporter`), and a plain callback ``fn(done, total)`` becomes a
reporter with :func:`from_callback`. Every reporter is marked with :func:`reporter`, so a
public ``progress=`` argument (:data:`ProgressArg`: a reporter, ``fn(done, total)``, True for
tqdm bars, False/None) is read in one place, where it enters (:func:`as_reporter`).
"""

from __future__ import annotations

import contextlib
import inspect
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager as ContextManager
from typing import Any, Protocol, Union

#: ``step(done)``: ``done`` units of the task are finished.
Step = Callable[[int], None]
#: ``fn(done, total)``: the public callback shape (``sample(progress=...)``, ``evaluate(progress=...)``).
Callback = Callable[[int, int], None]


class Reporter(Protocol):
    def __call__(self, label: str, *, total: int | None, initial: int = 0,
                 unit: str = "it") -> ContextManager[Step]: ...


#: What a public operation's ``progress=`` takes: a :class:`Reporter`, ``fn(done, total)``,
#: True (tqdm bars) or False/None (silence).
ProgressArg = Union[Reporter, Callback, bool, None]


def reporter(fn: Any) -> Any:
    """Mark ``fn`` as a :class:`Reporter` (not a ``fn(done, total)`` callback)."""
    fn.is_reporter = True
    return fn


def is_reporter(progress: Any) -> bool:
    """A reporter: marked with :func:`reporter`, or any callable whose ``total`` is
    keyword-only (the :class:`Reporter` signature; a ``fn(done, total)`` callback takes it by
    position)."""
    if getattr(progress, "is_reporter", False):
        return True
    try:
        param = inspect.signature(progress).parameters.get("total")
    except (TypeError, ValueError):
        return False
    return param is not None and param.kind is inspect.Parameter.KEYWORD_ONLY


def _silent(done: int) -> None:
    return None


@contextlib.contextmanager
def task(progress: Reporter | None, label: str, *, total: int | None, initial: int = 0,
         unit: str = "it") -> Iterator[Step]:
    """The step callback of one task: the reporter's, or a silent one."""
    if not progress or not callable(progress):
        yield _silent
        return
    with progress(label, total=total, initial=initial, unit=unit) as step:
        yield step


def from_callback(fn: Callback) -> Reporter:
    """A reporter that calls ``fn(done, total)`` at every step."""

    @reporter
    @contextlib.contextmanager
    def report(label: str, *, total: int | None, initial: int = 0, unit: str = "it") -> Iterator[Step]:
        yield lambda done: fn(done, total)

    return report


def labelled(progress: Reporter | None, prefix: str) -> Reporter | None:
    """``progress`` with every task's label prefixed: ``"{prefix}: {label}"`` (a sweep's
    rows: ``"biggan-deep-128 psi=0.5: eval fid/is"``)."""
    if progress is None:
        return None

    @reporter
    def report(label: str, *, total: int | None, initial: int = 0, unit: str = "it") -> ContextManager[Step]:
        return progress(f"{prefix}: {label}", total=total, initial=initial, unit=unit)

    return report


def tqdm_reporter(*, leave: bool = False) -> Reporter:
    """Bars on stderr (``tqdm.auto``: widgets in notebooks), the Python API's ``progress=True``."""

    @reporter
    @contextlib.contextmanager
    def report(label: str, *, total: int | None, initial: int = 0, unit: str = "it") -> Iterator[Step]:
        from tqdm.auto import tqdm

        byte = unit == "B"
        with tqdm(total=total, initial=initial, unit=unit, desc=label, file=sys.stderr, leave=leave,
                  dynamic_ncols=True, unit_scale=byte, unit_divisor=1024 if byte else 1000,
                  smoothing=0.05) as bar:
            yield lambda done: bar.update(done - bar.n)

    return report


def as_reporter(progress: ProgressArg) -> Reporter | None:
    """THE reading of a public ``progress`` argument: True -> tqdm bars, a reporter (the
    CLI's rich bars) -> itself, a callable ``fn(done, total)`` -> called, False/None ->
    silent."""
    if progress is True:
        return tqdm_reporter()
    if is_reporter(progress):
        return progress
    if callable(progress):
        return from_callback(progress)
    return None
