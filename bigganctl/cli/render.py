"""Output for the commands: results to stdout, everything else (progress, notes, errors) to
stderr. The consoles, the tables, the JSON document and the one rich progress adapter."""

from __future__ import annotations

import contextlib
import json
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ..progress import Reporter, Step, reporter as mark_reporter
from ..summary import num

# soft_wrap: never hard-wrap messages, so an error stays one line whatever the terminal width.
err = Console(stderr=True, highlight=False, soft_wrap=True)
#: Results meant for people (tables); long URLs and hashes stay on one line.
out = Console(highlight=False, soft_wrap=True)


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
    """A metric for the terminal's tables: ``-`` for None (summary.num's rule otherwise)."""
    return num(x, digits, none="-")


def rich_reporter(*, quiet: bool = False, transient: bool = True) -> Reporter | None:
    """THE rich progress adapter: a bar on stderr per task, with its rate and ETA (None when ``quiet``)."""
    if quiet:
        return None

    @mark_reporter
    @contextlib.contextmanager
    def report(label: str, *, total: int | None, initial: int = 0, unit: str = "it") -> Iterator[Step]:
        from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn, TransferSpeedColumn)

        count = DownloadColumn() if unit == "B" else MofNCompleteColumn()
        rate = TransferSpeedColumn() if unit == "B" else _rate_column(unit)
        with Progress(TextColumn("{task.description}"), BarColumn(), count, rate, TimeElapsedColumn(),
                      TimeRemainingColumn(), console=err, transient=transient) as bar:
            t = bar.add_task(label, total=total, completed=initial)
            yield lambda done: bar.update(t, completed=done)

    return report


def _rate_column(unit: str):
    """``12.3 img/s`` (rich's own speed estimate, blank until it has one)."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task) -> Text:
            speed = task.finished_speed or task.speed
            return Text("" if speed is None else f"{speed:.1f} {unit}/s", style="progress.data.speed")

    return Rate()


def invoked_command() -> str | None:
    """The command line as typed, when this process is the bigganctl program
    (``bigganctl ...`` or ``python -m bigganctl ...``); None otherwise (e.g. in tests)."""
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if argv0 is None:
        return None
    if argv0.name == "bigganctl" or argv0.parts[-2:] == ("bigganctl", "__main__.py"):
        return shlex.join(["bigganctl", *sys.argv[1:]])
    return None


def render_eval(res: dict[str, Any]) -> None:
    """``bigganctl eval``'s table and summary lines on stdout."""
    table = Table(box=None, pad_edge=False, show_header=True)
    table.add_column("metric", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("± std", justify="right", no_wrap=True)
    if "fid" in res["metrics"]:
        table.add_row("FID", fmt_number(res["fid"]), "")
    if "is" in res["metrics"]:
        table.add_row("IS", fmt_number(res["is_mean"]), fmt_number(res["is_std"]))
    if "kid" in res["metrics"]:
        table.add_row("KID", fmt_number(res["kid_mean"], 6), fmt_number(res["kid_std"], 6))
    for key, label in (("sfid", "sFID"), ("precision", "precision"), ("recall", "recall")):
        if key in res["metrics"]:
            table.add_row(label, fmt_number(res.get(key)), "")
    out.print(table)
    if res.get("images"):
        what = f"images {res['images']}"
    else:
        what = (f"{res['model']} psi={res['trunc']:g} ({res['trunc_convention']}) seed={res['seed']} "
                f"classes={res['classes'] if isinstance(res['classes'], str) else 'list'} {res['dtype']}")
    out.print(f"n={res['n']}  {what}")
    ref = f"ref={res['ref']}  " if res.get("ref") else ""
    rate = f" ({res['samples_per_second']:.1f} img/s)" if res.get("samples_per_second") else ""
    out.print(f"{ref}extractor={res['extractor_id']}  {res['seconds']:.1f} s{rate}")


class LiveTable:
    """The sweep's rows on stderr as they finish: a rich Live table on a terminal, one line
    per row otherwise (logs, CI)."""

    def __init__(self, metrics: tuple[str, ...], quiet: bool):
        self.metrics, self.quiet = metrics, quiet
        self.rows: list[tuple[dict, bool]] = []
        self.status = ""
        self.live = None
        self.header_done = False

    def columns(self) -> list[tuple[str, Any]]:
        cols: list[tuple[str, Any]] = [("psi", lambda r: str(r["psi"]))]
        if any("model" in r for r, _ in self.rows):
            cols.insert(0, ("model", lambda r: r["model"]))
        if "fid" in self.metrics:
            cols.append(("FID", lambda r: fmt_number(r["fid"])))
        if "is" in self.metrics:
            cols.append(("IS", lambda r: f"{fmt_number(r['is_mean'])} ± {fmt_number(r['is_std'])}"))
        if "kid" in self.metrics:
            cols.append(("KID", lambda r: f"{fmt_number(r['kid_mean'], 6)} ± {fmt_number(r['kid_std'], 6)}"))
        for key, label in (("sfid", "sFID"), ("precision", "P"), ("recall", "R")):
            if key in self.metrics:
                cols.append((label, lambda r, key=key: fmt_number(r.get(key))))
        cols.append(("s", lambda r: f"{r['seconds']:.1f}"))
        return cols

    def render(self):
        from rich.console import Group

        table = Table(box=None, pad_edge=False)
        cols = self.columns()
        for name, _ in cols:
            table.add_column(name, justify="left" if name == "model" else "right", no_wrap=True)
        table.add_column("", no_wrap=True)
        for r, earlier in self.rows:
            table.add_row(*[f(r) for _, f in cols], "(earlier run)" if earlier else "")
        return Group(table, self.status) if self.status else table

    def __enter__(self) -> LiveTable:
        if not self.quiet and err.is_terminal:
            from rich.live import Live

            self.live = Live(self.render(), console=err, refresh_per_second=4, transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.status = ""
            self.live.update(self.render(), refresh=True)
            self.live.__exit__(*exc)

    def on_row(self, row: dict, earlier: bool) -> None:
        self.rows.append((row, earlier))
        self.status = ""
        if self.quiet:
            return
        if self.live is not None:
            self.live.update(self.render())
            return
        cols = self.columns()
        if not self.header_done:
            err.print("  ".join(name for name, _ in cols))
            self.header_done = True
        err.print("  ".join(f(row) for _, f in cols) + ("  (earlier run)" if earlier else ""))

    def reporter(self) -> Reporter | None:
        """Every task's progress (a row's evaluation, a download): a status line under the
        live table on a terminal, else rich bars (None when quiet)."""
        if self.quiet or self.live is None:
            return rich_reporter(quiet=self.quiet)

        @mark_reporter
        @contextlib.contextmanager
        def report(label: str, *, total: int | None, initial: int = 0, unit: str = "it") -> Iterator[Step]:
            def step(done: int) -> None:
                self.status = f"[dim]{label}: {done}/{total if total is not None else '?'} {unit}[/dim]"
                self.live.update(self.render())

            step(initial)
            yield step
            self.status = ""

        return report
