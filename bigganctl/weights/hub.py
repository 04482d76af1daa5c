"""Names -> files on disk: the cache, downloads, checksums and the offline rules.

Cache layout (root ``BIGGANCTL_HOME``, default ``~/.cache/bigganctl``)::

    <home>/models/<model name>/<filename>     generator weights (+ config.json)
    <home>/inception/<filename>                feature-extractor weights (``inception``)
    <home>/stats/<filename>                    reference statistics (ADM batches)
    <home>/stats/features/                     KID features of ADM batches (:mod:`bigganctl.metrics.ref_features`)
    <home>/hashes/                             sha256 records of files outside the cache

Beside every cached file live hidden helpers: ``.<filename>.lock`` (an ``fcntl`` lock so
two processes never download the same file at once), ``.<filename>.sha256`` (a memo of its
sha256, keyed on size and mtime) and, for files whose full sha256 the registry does not
pin, ``.<filename>.tofu.json`` (the sha256 recorded at the first download: trust on first
use; see :mod:`bigganctl.weights.checksums`). An interrupted download leaves ``.<filename>.part``,
resumed with an HTTP Range request; nothing appears under the final name unverified.

Offline (``BIGGANCTL_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``) no socket is ever opened: cached
files only, and a missing one raises :class:`WeightsUnavailable` saying how to get it.

The one entry point other modules need is :func:`ensure_file`
(``ensure_file(RemoteFile("VIRTUAL_imagenet128_labeled.npz", (url,)), "stats")``); the HTTP
transport is :mod:`bigganctl.weights.download`.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Union

from . import checksums, download
from .._io import file_lock, make_dir, sha256_file, sha256_matches
from ..errors import ChecksumError, WeightsUnavailable
from ..progress import Reporter
from .registry import ASSETS, REGISTRY, Asset, ModelSpec, RemoteFile

# Network knobs (module attributes so tests and users can tune them).
CONNECT_TIMEOUT = float(os.environ.get("BIGGANCTL_HTTP_TIMEOUT", "15"))  # seconds per socket op
RETRIES = 4                  # attempts per URL for transient errors (5xx, resets, stalls)
BACKOFF = 1.0                # seconds; doubles after every failed attempt
USER_AGENT = "bigganctl (+https://github.com/bigganctl)"

_TRUTHY = {"1", "true", "yes", "on"}


def _policy() -> download.Policy:
    """The knobs as they are now (tests and users may change the module attributes)."""
    return download.Policy(timeout=CONNECT_TIMEOUT, retries=RETRIES, backoff=BACKOFF, user_agent=USER_AGENT)


Spec = Union[ModelSpec, Asset]


# ---------------------------------------------------------------------------------------
# Environment

def home() -> Path:
    """The cache root: ``$BIGGANCTL_HOME`` or ``~/.cache/bigganctl``."""
    env = os.environ.get("BIGGANCTL_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "bigganctl"


def offline() -> bool:
    """True when ``BIGGANCTL_OFFLINE`` or ``HF_HUB_OFFLINE`` is set to 1/true/yes/on."""
    return any(os.environ.get(k, "").strip().lower() in _TRUTHY
               for k in ("BIGGANCTL_OFFLINE", "HF_HUB_OFFLINE"))


def subdir_of(spec: Spec) -> str:
    """Cache folder (relative to :func:`home`) of a model spec or an asset."""
    return spec.subdir if isinstance(spec, Asset) else f"models/{spec.name}"


def spec_dir(spec: Spec) -> Path:
    return home() / subdir_of(spec)


def cached_path(remote: RemoteFile, subdir: str) -> Path | None:
    """The cached copy of ``remote`` if present (nothing is downloaded or hashed)."""
    p = home() / subdir / remote.filename
    return p if p.is_file() else None


def get_asset(name: str) -> Asset | None:
    return ASSETS.get(name)


def pullable_names() -> list[str]:
    return [*REGISTRY, *ASSETS]


# ---------------------------------------------------------------------------------------
# Checksums (the memo and trust-on-first-use records: bigganctl.weights.checksums)

def cached_sha256(path: str | os.PathLike, *, compute: bool = True, verify: bool = False) -> str | None:
    """sha256 of ``path``, computed once and remembered (keyed on size + mtime).

    With ``compute=False`` only a remembered value is returned (None if there is none);
    with ``verify=True`` the file is hashed again and the memo corrected.
    """
    return checksums.cached_sha256(path, home(), compute=compute, verify=verify)


def _remember_sha256(p: Path, digest: str) -> None:
    checksums.remember_sha256(p, home(), digest)


# ---------------------------------------------------------------------------------------
# Messages

def unavailable_message(pull_name: str, filename: str, reason: str,
                        alternative: str = "--weights PATH") -> str:
    """The one instruction for missing weights (offline, unreachable, manual download)."""
    return (f"{filename} for {pull_name} is not in the cache ({home()}) and {reason}. "
            f"Run `bigganctl models pull {pull_name}` on a machine with network access and "
            f"copy its BIGGANCTL_HOME ({home()}) here, or pass {alternative}.")


def _pull_name(subdir: str) -> str:
    parts = Path(subdir).parts
    return parts[1] if len(parts) >= 2 and parts[0] == "models" else (parts[-1] if parts else subdir)


# ---------------------------------------------------------------------------------------
# Status and verification

def file_path(spec: Spec, remote: RemoteFile) -> Path:
    return spec_dir(spec) / remote.filename


def cache_status(spec: Spec) -> dict[str, Any]:
    """What the cache holds for a model or asset, without hashing anything new.

    ``state``: ``cached`` (every file present), ``partial``, ``missing`` (downloadable) or
    ``manual`` (no public URL; download by hand). Per file: path, present, size on disk,
    expected size/sha256, ``checksum`` (``pinned`` by the registry, ``tofu``: recorded at
    the first download, or ``unknown``), the recorded sha256/size, and ``verified``
    (True/False from a remembered sha256, None if never hashed; ``bigganctl models
    verify`` hashes).
    """
    files = []
    for rf in spec.files:
        p = file_path(spec, rf)
        present = p.is_file()
        size = p.stat().st_size if present else None
        record = None if checksums.pinned(rf) else checksums.read_tofu(p)
        verified: bool | None = None
        if present:
            known = cached_sha256(p, compute=False)
            if rf.size is not None and size != rf.size:
                verified = False
            elif known is not None and (rf.sha256 or record):
                verified = sha256_matches(known, rf.sha256) and (
                    record is None or checksums.tofu_problem(known, size or 0, record) is None)
        part = p.with_name(f".{p.name}.part")
        files.append({
            "filename": rf.filename, "path": str(p), "present": present, "size": size,
            "expected_size": rf.size, "expected_sha256": rf.sha256, "verified": verified,
            "checksum": checksums.checksum_kind(rf, p),
            "recorded_sha256": record["sha256"] if record else None,
            "recorded_size": record.get("size") if record else None,
            "partial_bytes": part.stat().st_size if part.is_file() else None,
            "urls": list(rf.urls), "member": rf.member,
        })
    n = sum(f["present"] for f in files)
    if files and n == len(files):
        state = "cached"
    elif n:
        state = "partial"
    elif not files or not all(rf.urls for rf in spec.files):
        state = "manual"
    else:
        state = "missing"
    return {"name": spec.name, "dir": str(spec_dir(spec)), "state": state, "files": files}


def verify(spec: Spec) -> list[dict[str, Any]]:
    """Hash every cached file of ``spec`` afresh and compare with the registry, or with the
    sha256 recorded at the file's first download (trust on first use).

    Returns one dict per file: filename, path, status (``ok`` | ``mismatch`` | ``missing`` |
    ``unknown`` (no reference checksum)), checksum (``pinned`` | ``tofu`` | ``unknown``),
    sha256, expected_sha256, size, expected_size. Never raises for a mismatch.
    """
    out = []
    for rf in spec.files:
        p = file_path(spec, rf)
        record = None if checksums.pinned(rf) else checksums.read_tofu(p)
        row: dict[str, Any] = {"filename": rf.filename, "path": str(p), "sha256": None, "size": None,
                               "expected_sha256": rf.sha256 if record is None else record["sha256"],
                               "expected_size": rf.size if record is None else record.get("size"),
                               "checksum": checksums.checksum_kind(rf, p)}
        if not p.is_file():
            row["status"] = "missing"
        else:
            row["size"] = p.stat().st_size
            digest = sha256_file(p)
            _remember_sha256(p, digest)
            row["sha256"] = digest
            bad = checksums.registry_problem(digest, row["size"], rf) or (
                record is not None and checksums.tofu_problem(digest, row["size"], record))
            row["status"] = "mismatch" if bad else ("ok" if rf.sha256 or record else "unknown")
        out.append(row)
    return out


def forget(spec: Spec) -> None:
    """Remove a model's or asset's cached files and their recorded checksums
    (``bigganctl models pull NAME --force``); the next use downloads and records afresh."""
    for rf in spec.files:
        checksums.forget(file_path(spec, rf))


def ensure_spec(spec: Spec, *, progress: Reporter | None = None) -> list[Path]:
    """``ensure_file`` for every file of a model or asset; returns their paths."""
    return [ensure_file(rf, subdir_of(spec), progress=progress, pull_name=spec.name,
                        notes=spec.notes, alternative=getattr(spec, "alternative", "--weights PATH"))
            for rf in spec.files]


# ---------------------------------------------------------------------------------------
# ensure_file

def ensure_file(remote: RemoteFile, subdir: str, *, progress: Reporter | None = None,
                pull_name: str | None = None, notes: str = "",
                alternative: str = "--weights PATH") -> Path:
    """Return the path of ``remote`` in the cache, downloading it first if needed.

    ``subdir`` is relative to :func:`home` (``"models/biggan-deep-128"``, ``"inception"``,
    ``"stats"``). A cached file is checked against the registry's size and sha256 (the hash
    is remembered, so this is cheap after the first time); a bad one is removed and fetched
    again (offline: :class:`ChecksumError`). Without a full sha256 in the registry, the
    sha256 recorded at the file's first download is the reference (trust on first use): a
    cached file that no longer matches it is removed and refused (:class:`ChecksumError`).

    Downloading tries ``remote.urls`` in order (mirrors), with a short connect timeout,
    retries with back-off for transient failures, resumes from ``.<filename>.part`` with
    an HTTP Range request, reports bytes to ``progress`` (a
    :class:`~bigganctl.progress.Reporter`), verifies size and sha256 (or the TOFU record;
    a mismatching copy is deleted and the next mirror tried, then :class:`ChecksumError`:
    nothing is left in the cache) and moves the file into place atomically.
    ``remote.member`` names a file inside a zip/tar download, which is extracted. A
    per-file ``fcntl`` lock serialises concurrent downloads of one file.

    Offline (:func:`offline`) no socket is opened. Raises :class:`WeightsUnavailable`
    (with the exact instruction) when the file is neither cached nor downloadable.
    ``pull_name`` is the name for ``bigganctl models pull`` in messages (default: from
    ``subdir``); ``alternative`` the option that passes the file by hand (``--weights
    PATH``, ``--inception-weights PATH``, ``--ref FILE.npz``); ``notes`` is appended for
    files that must be fetched by hand.
    """
    name = pull_name or _pull_name(subdir)
    folder = home() / subdir
    dest = folder / remote.filename
    trust = checksums.Trust(remote, dest, name, subdir)

    if dest.is_file() and _cached_ok(dest, remote, trust, delete_bad=not offline()):
        return dest
    if offline():
        raise WeightsUnavailable(unavailable_message(
            name, remote.filename, "offline mode is on (BIGGANCTL_OFFLINE / HF_HUB_OFFLINE)",
            alternative))
    if not remote.urls:
        raise WeightsUnavailable(
            unavailable_message(name, remote.filename, "it has no public download URL", alternative)
            + (f" {notes}" if notes else "")
            + f" You can also place the file at {dest}.")

    _mkdir(folder)
    with file_lock(folder / f".{remote.filename}.lock"):
        # Another process may have finished the download while we waited for the lock.
        if dest.is_file() and _cached_ok(dest, remote, trust, delete_bad=True):
            return dest
        _download_any(remote, dest, trust, progress=progress, alternative=alternative)
    return dest


def _mkdir(folder: Path) -> None:
    make_dir(folder, "the cache folder ")


def _cached_ok(dest: Path, remote: RemoteFile, trust: checksums.Trust, *, delete_bad: bool) -> bool:
    """Is the cached file right? A wrong one is deleted (when we may re-download) or raises.

    A file that no longer matches the sha256 recorded at its first download (TOFU) is
    always deleted and refused: it changed in the cache, and a fresh copy must be asked for.
    """
    size = dest.stat().st_size
    problem = None
    if remote.size is not None and size != remote.size:
        problem = f"size {size} bytes, expected {remote.size}"
    elif remote.sha256 or trust.active:
        digest = cached_sha256(dest)
        if not sha256_matches(digest, remote.sha256):
            problem = f"sha256 {digest}, expected {remote.sha256}"
        elif (tofu := trust.problem(digest, size)) is not None:
            checksums.forget(dest, keep_record=True)
            raise ChecksumError(f"cached file {dest} changed since its first download ({tofu}); "
                                "removed it", hint=trust.hint())
        else:
            trust.accept(digest, size, "cache")     # first use of a file placed by hand
    if problem is None:
        return True
    if delete_bad:
        with contextlib.suppress(OSError):
            dest.unlink()
        return False
    raise ChecksumError(f"cached file {dest} is corrupt ({problem})",
                        hint="delete it and run `bigganctl models pull` on a connected machine")


def _download_any(remote: RemoteFile, dest: Path, trust: checksums.Trust, *, progress: Reporter | None,
                  alternative: str) -> None:
    errors: list[str] = []
    checksum_failures: list[str] = []
    unreachable = 0
    for url in remote.urls:
        # Plain files download to .<filename>.part; archives to .<archive name>.part
        # (kept for resume until the member is extracted).
        part_name = remote.filename if remote.member is None else download.url_basename(url)
        part = dest.with_name(f".{part_name}.part")
        try:
            download.fetch(url, part, progress=progress, label=remote.filename, policy=_policy(),
                            expected_size=None if remote.member else remote.size)
        except download.Unreachable as e:
            unreachable += 1
            errors.append(f"{url}: {e}")
            continue
        except (download.Permanent, download.Transient) as e:
            errors.append(f"{url}: {e}")
            continue
        if remote.member is not None:
            try:
                produced = download.extract_member(part, remote.member, dest)
            finally:
                with contextlib.suppress(OSError):
                    part.unlink()
        else:
            produced = part
        problem = _place(produced, dest, remote, trust, source=url)
        if problem:
            checksum_failures.append(f"{url}: {problem}")
            continue
        return
    if checksum_failures:
        raise ChecksumError(f"downloaded {remote.filename} does not match its expected checksum "
                            f"(removed; nothing cached): " + "; ".join(checksum_failures),
                            hint=trust.hint() if trust.recorded else None)
    reason = ("the network is unreachable" if unreachable == len(remote.urls)
              else "the download failed")
    raise WeightsUnavailable(unavailable_message(trust.name, remote.filename, reason, alternative),
                             hint="tried: " + "; ".join(errors))


def _place(produced: Path, dest: Path, remote: RemoteFile, trust: checksums.Trust, source: str) -> str | None:
    """Verify a finished download (registry size/sha256, else the TOFU record) and move it
    into place, recording its sha256 if this is its first download. Returns the problem
    (the file deleted) or None."""
    size = produced.stat().st_size
    digest = sha256_file(produced)
    problem = checksums.registry_problem(digest, size, remote) or trust.problem(digest, size)
    if problem:
        with contextlib.suppress(OSError):
            produced.unlink()
        return problem
    os.replace(produced, dest)
    _remember_sha256(dest, digest)
    trust.accept(digest, size, source)
    return None


def extract_to_cache(archive: str | os.PathLike, remote: RemoteFile, subdir: str) -> Path:
    """Extract ``remote.member`` from a local archive the user downloaded by hand (e.g. the
    author's ``BigGAN_ch96_bs256x8_138k.zip``) into the cache, verified; returns its path.

    Later runs then find the file without ``--weights``.
    """
    if remote.member is None:
        raise ValueError(f"{remote.filename} is not an archive member")
    folder = home() / subdir
    dest = folder / remote.filename
    trust = checksums.Trust(remote, dest, _pull_name(subdir), subdir)
    if dest.is_file() and _cached_ok(dest, remote, trust, delete_bad=True):
        return dest
    _mkdir(folder)
    with file_lock(folder / f".{remote.filename}.lock"):
        produced = download.extract_member(Path(archive), remote.member, dest)
        problem = _place(produced, dest, remote, trust, source=str(archive))
        if problem:
            raise ChecksumError(f"{remote.member} in {archive} does not match its expected checksum ({problem})",
                                hint=trust.hint() if trust.recorded else None)
    return dest
