"""The HTTP transport behind :mod:`bigganctl.weights.hub`: one GET with resume, retries with
back-off, and copying a member out of a zip/tar download.

Failures are classified for the hub's mirror logic: :class:`Unreachable` (no connection
at all: do not retry), :class:`Permanent` (the server refuses: next mirror) and
:class:`Transient` (worth retrying). The knobs come from the hub as a :class:`Policy`.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import shutil
import socket
import sys
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import RuntimeFailure
from ..progress import Reporter, task

CHUNK = 1 << 20


@dataclass(frozen=True)
class Policy:
    """Network knobs: seconds per socket operation, attempts per URL, first back-off pause."""

    timeout: float
    retries: int
    backoff: float
    user_agent: str


class Unreachable(Exception):
    """Could not connect at all (DNS, refused, no route, connect timeout): do not retry."""


class Permanent(Exception):
    """The server answered but will not serve the file (404, 403...): next mirror."""


class Transient(Exception):
    """Worth retrying after a pause (5xx, 429, reset, stalled read)."""


def url_basename(url: str) -> str:
    from urllib.parse import urlparse

    return Path(urlparse(url).path).name or "download"


def extract_member(archive: Path, member: str, dest: Path) -> Path:
    """Copy ``member`` of a zip or tar ``archive`` to a temporary file beside ``dest``."""
    out = dest.with_name(f".{dest.name}.extract")
    try:
        with contextlib.ExitStack() as stack:
            if zipfile.is_zipfile(archive):
                src = stack.enter_context(zipfile.ZipFile(archive)).open(member)
            elif tarfile.is_tarfile(archive):
                src = stack.enter_context(tarfile.open(archive)).extractfile(member)
                if src is None:
                    raise KeyError(member)
            else:
                raise RuntimeFailure(f"{archive.name}: not a zip or tar archive "
                                     f"(expected one containing {member})")
            with src, open(out, "wb") as fh:
                shutil.copyfileobj(src, fh, CHUNK)
    except KeyError:
        with contextlib.suppress(OSError):
            out.unlink()
        raise RuntimeFailure(f"archive {archive.name} has no member {member!r}") from None
    return out


def fetch(url: str, part: Path, *, label: str, expected_size: int | None, policy: Policy,
          progress: Reporter | None = None) -> None:
    """GET ``url`` into ``part`` (resuming what is there), retrying transient failures with
    exponential back-off. Raises Unreachable, Permanent or (after the last try) Transient."""
    delay = policy.backoff
    for attempt in range(1, policy.retries + 1):
        try:
            _download_once(url, part, progress=progress, label=label, expected_size=expected_size,
                           policy=policy)
            return
        except Transient as e:
            if attempt == policy.retries:
                raise
            if progress:
                print(f"bigganctl: {label}: {e}; retrying in {delay:.0f}s "
                      f"(attempt {attempt + 1}/{policy.retries})", file=sys.stderr)
            time.sleep(delay)
            delay *= 2


def _is_connect_failure(reason: object) -> bool:
    return isinstance(reason, (socket.gaierror, socket.timeout, ConnectionRefusedError,
                               TimeoutError)) or (
        isinstance(reason, OSError) and getattr(reason, "errno", None) in _UNREACHABLE_ERRNOS)


_UNREACHABLE_ERRNOS = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ECONNREFUSED,
                       errno.ENETDOWN, errno.EHOSTDOWN, errno.ETIMEDOUT}


def _download_once(url: str, part: Path, *, progress: Reporter | None, label: str,
                   expected_size: int | None, policy: Policy) -> None:
    """One HTTP GET into ``part``, resuming from its current size with a Range request."""
    have = part.stat().st_size if part.is_file() else 0
    if expected_size is not None and have == expected_size:
        return                                   # complete already; the caller verifies
    if expected_size is not None and have > expected_size:
        part.unlink()
        have = 0
    headers = {"User-Agent": policy.user_agent, "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    req = urllib.request.Request(url, headers=headers)
    try:
        resp = urllib.request.urlopen(req, timeout=policy.timeout)
    except urllib.error.HTTPError as e:
        e.close()
        if e.code == 416 and have:               # nothing left to send: restart cleanly
            part.unlink()
            raise Transient("server rejected the resume range; restarting") from None
        if e.code in (408, 425, 429) or e.code >= 500:
            raise Transient(f"HTTP {e.code} {e.reason}") from None
        raise Permanent(f"HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        if _is_connect_failure(e.reason):
            raise Unreachable(str(e.reason)) from None
        raise Transient(str(e.reason)) from None
    except TimeoutError:
        raise Transient(f"no response within {policy.timeout:g}s") from None
    except (http.client.HTTPException, ConnectionError, OSError) as e:
        raise Transient(f"{type(e).__name__}: {e}") from None

    with resp:
        status = getattr(resp, "status", 200)
        if have and status == 206:
            crange = resp.headers.get("Content-Range", "")
            if not crange.startswith(f"bytes {have}-"):
                part.unlink()
                raise Transient(f"unexpected Content-Range {crange!r}; restarting")
            mode = "ab"
        else:
            have, mode = 0, "wb"                 # server ignored Range: start over
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else expected_size
        written = 0
        with open(part, mode) as fh, task(progress, label, total=total, initial=have, unit="B") as step:
            try:
                while True:
                    block = resp.read(CHUNK)
                    if not block:
                        break
                    fh.write(block)
                    written += len(block)
                    step(have + written)
            except TimeoutError as e:
                raise Transient(f"transfer stalled for {policy.timeout:g}s") from e
            except (http.client.HTTPException, ConnectionError, OSError) as e:
                raise Transient(f"transfer interrupted ({type(e).__name__})") from e
        if length and length.isdigit() and written < int(length):
            raise Transient(f"transfer ended early ({have + written} of {total} bytes)")
