"""Atomic file writes: write to a temporary file beside the target, then rename.

An interrupted or failed write never leaves a half-written file at the target path.
"""

from __future__ import annotations

import contextlib
import contextvars
import fcntl
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any
from collections.abc import Iterator

from .errors import RuntimeFailure, UsageError


def check_writable_target(path: str | os.PathLike, *, overwrite: bool, option: str) -> Path:
    """Refuse to clobber an existing file unless ``overwrite``; return the path.

    Raises UsageError (exit 2) naming ``option`` when the file exists.
    """
    p = Path(path)
    if p.exists() and not overwrite:
        raise UsageError(f"{p} exists; pass --overwrite to replace it", param=option)
    if p.exists() and p.is_dir():
        raise UsageError(f"{p} is a directory", param=option)
    return p


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it onto ``path``.

    Parent folders are created. On any exception the temporary file is removed and the
    target is left untouched. ``suffix`` defaults to the target's suffix so writers that
    pick a format by extension (Pillow, imageio) still work.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=target.suffix if suffix is None else suffix,
            dir=target.parent,
        )
    except OSError as e:
        raise RuntimeFailure(f"cannot write {target}: {e.strerror or e}") from e
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates 0600; outputs get the usual permissions (0666 minus the umask).
    umask = os.umask(0)
    os.umask(umask)
    with contextlib.suppress(OSError):
        os.chmod(tmp_path, 0o666 & ~umask)
    try:
        yield tmp_path
        staging = _STAGING.get()
        if staging is None:
            os.replace(tmp_path, target)
        else:
            staging.append((tmp_path, target, True))     # renamed with the others at the end
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


#: the renames of the running :func:`together` block: (source, target, remove the source on failure)
_STAGING: contextvars.ContextVar[list[tuple[Path, Path, bool]] | None] = contextvars.ContextVar("staging",
                                                                                               default=None)


def stage_rename(src: str | os.PathLike, target: str | os.PathLike) -> None:
    """``os.replace(src, target)``, deferred to the end of a running :func:`together` block
    (at once outside one). On failure the source is left where it is (resume state)."""
    staging = _STAGING.get()
    if staging is None:
        os.replace(src, target)
    else:
        staging.append((Path(src), Path(target), False))


@contextlib.contextmanager
def together() -> Iterator[None]:
    """The outputs of one command appear together or not at all: inside this block every
    :func:`atomic_path` write stays under its temporary name (and :func:`stage_rename`
    waits); at the end all are renamed onto their targets, and on any failure (a full disk
    at the fifth file, Ctrl-C) the temporaries are removed, so nothing is left under a
    final name that a re-run would refuse."""
    if _STAGING.get() is not None:          # nested: the outer block renames
        yield
        return
    staged: list[tuple[Path, Path, bool]] = []
    token = _STAGING.set(staged)
    renamed = 0
    try:
        try:
            yield
        finally:
            _STAGING.reset(token)
        for src, target, _ in staged:
            os.replace(src, target)
            renamed += 1
    except BaseException:
        for src, _, temporary in staged[renamed:]:
            if temporary:
                with contextlib.suppress(OSError):
                    src.unlink()
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """``open()`` for writing, atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        with open(tmp, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_open(path, "w") as fh:
        json.dump(obj, fh, indent=2, sort_keys=False, default=str)
        fh.write("\n")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def sha256_matches(actual: str, expected: str | None) -> bool:
    """``expected`` may be a full hex digest or a prefix (>= 8 hex digits, torch.hub names)."""
    if not expected:
        return True
    return actual.lower().startswith(expected.lower())


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Exclusive ``fcntl`` lock on ``path``; the lock file is removed on release.

    Removing lock files is safe because a waiter, once it holds the lock, checks that the
    path still names the file it locked and starts over if not.
    """
    while True:
        fh = open(path, "a+")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                same = os.fstat(fh.fileno()).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
        except BaseException:
            fh.close()
            raise
        if same:
            break
        fh.close()
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        fh.close()


def make_dir(path: Path, what: str = "", hint: str | None = None) -> None:
    """``mkdir -p path``; an OS error is a RuntimeFailure naming the folder (``what``: e.g.
    "the cache folder "), with ``hint`` when given."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RuntimeFailure(f"cannot create {what}{path}: {e.strerror or e}", hint=hint) from None
