"""``bigganctl``: the Typer application. Commands live one per module in this package;
domain exceptions are mapped to messages and exit codes here, once."""

from __future__ import annotations

import functools
import importlib
import os
import sys
from typing import Any
from collections.abc import Callable

import typer
from rich.markup import escape

from ..errors import BigGANCtlError, Terminated, UsageError, sigterm_as_interrupt
from .options import cli_flag
from .render import err

app = typer.Typer(
    name="bigganctl",
    help="Sample, sweep and evaluate BigGAN generators.\n\n"
         "Examples:\n\n"
         "  bigganctl sample --class 207 --trunc 0.5 --out grid.png\n\n"
         "  bigganctl eval fid --model biggan-deep-128 --ref imagenet-128 --n 50000\n\n"
         "  bigganctl models list",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# Command modules in --help order; each defines ``register(app)``.
_COMMAND_MODULES = [
    "sample", "eval", "sweep", "interp", "stats", "models", "classes", "bench", "compare",
]


def _debug() -> bool:
    return os.environ.get("BIGGANCTL_DEBUG", "") not in ("", "0")


def message(e: BigGANCtlError, command: str | None = None) -> str:
    """The one-line text of a domain exception, a parameter shown as the command's flag."""
    if isinstance(e, UsageError) and e.param:
        return f"{cli_flag(e.param, command)}: {e.message}"
    return str(e)


def guard(fn: Callable[..., Any], command: str | None = None) -> Callable[..., Any]:
    """Map domain exceptions to a one-line message on stderr and the contract's exit code.
    ``command`` (default: the module of ``fn``) picks the flag spelling (:func:`cli_flag`)."""
    command = command or fn.__module__.rsplit(".", 1)[-1]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except BigGANCtlError as e:
            if _debug():
                raise
            err.print(f"[bold red]error:[/bold red] {escape(message(e, command))}")
            if e.hint:
                err.print(f"  {escape(e.hint)}")
            raise typer.Exit(e.exit_code) from None
        except Terminated:
            err.print("interrupted by SIGTERM (exit 143): a checkpoint, where the command keeps one, was saved; "
                      "the same command resumes it")
            raise typer.Exit(143) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None
        except MemoryError:
            if _debug():
                raise
            err.print("[bold red]error:[/bold red] out of memory; a smaller --n or --batch-size needs less")
            raise typer.Exit(1) from None
        except OSError as e:
            if _debug():
                raise
            where = f" ({e.filename})" if getattr(e, "filename", None) else ""
            err.print(f"[bold red]error:[/bold red] {escape(e.strerror or str(e))}{escape(where)}")
            raise typer.Exit(1) from None

    return wrapper


def _guard_all(t: typer.Typer) -> None:
    for info in t.registered_commands:
        if info.callback is not None and not getattr(info.callback, "__wrapped__", None):
            info.callback = guard(info.callback)
    for group in t.registered_groups:
        if group.typer_instance is not None:
            _guard_all(group.typer_instance)


def _register() -> None:
    for name in _COMMAND_MODULES:
        modname = f"{__package__}.{name}"
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as e:
            if e.name == modname:
                continue
            raise
        mod.register(app)
    _guard_all(app)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True),
) -> None:
    if version:
        from .. import __version__

        typer.echo(__version__)
        raise typer.Exit(0)


_register()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point. SIGTERM acts like Ctrl-C (exit 143)."""
    sigterm_as_interrupt()
    app(args=argv if argv is not None else sys.argv[1:], prog_name="bigganctl")


if __name__ == "__main__":  # pragma: no cover
    main()
