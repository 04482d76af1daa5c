"""Domain exceptions. The core raises these; ``bigganctl.cli`` maps them to exit codes once.

Exit codes (docs/CLI.md): 0 success, 1 runtime failure, 2 usage error, 3 quality gate
missed, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
"""

from __future__ import annotations


class BigGANCtlError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with; ``hint`` an optional next step."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.message


class UsageError(BigGANCtlError):
    """Bad user input (an argument value, an unknown class, conflicting arguments): exit 2.

    ``param`` names the offending Python parameter (``psi``, ``batch_size``), so the
    one-line message reads ``psi: must be > 0``. The command line shows its own flag instead
    (``--trunc: ...``; the one table is ``bigganctl.cli.options.PARAM_FLAGS``). A value that
    already starts with ``-`` (a flag only the CLI has) is shown as it is. ``option`` is the
    older name of ``param`` and still accepted.
    """

    exit_code = 2

    def __init__(self, message: str, *, param: str | None = None, option: str | None = None,
                 hint: str | None = None):
        super().__init__(message, hint=hint)
        self.param = param if param is not None else option

    @property
    def option(self) -> str | None:
        """The older name of :attr:`param`."""
        return self.param

    def __str__(self) -> str:
        return f"{self.param}: {self.message}" if self.param else self.message


class RuntimeFailure(BigGANCtlError):
    """Something outside the user's command line failed (I/O, network, corrupt file): exit 1."""


class WeightsUnavailable(RuntimeFailure):
    """Weights are neither cached nor downloadable (offline, no network): exit 1."""


class CheckpointError(RuntimeFailure):
    """A checkpoint does not match its format: missing / unexpected / mis-shaped keys,
    an unsafe pickle, an unreadable file: exit 1."""


class ChecksumError(RuntimeFailure):
    """A downloaded or cached file does not have the expected sha256: exit 1."""


class GateFailed(BigGANCtlError):
    """A quality gate (``--max-fid``, ``--min-is``) was missed: exit 3."""

    exit_code = 3


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's preemption, torchrun stopping the survivors), raised where the
    process is: everything Ctrl-C does happens (checkpoint saved, temporary files removed),
    then the CLI exits 143."""


def sigterm_as_interrupt():
    """Turn SIGTERM into :class:`Terminated` in the main thread; returns the previous
    handler (None outside the main thread). A second SIGTERM during the clean-up kills at
    once (the default action)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise Terminated

    return signal.signal(signal.SIGTERM, handler)
