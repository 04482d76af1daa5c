"""Names -> files on disk: the cache, downloads, checksums and the offline rules.

Cache layout (root ``BIGGANCTL_HOME``, default ``~/.cache/bigganctl``)::

    <home>/models/<model name>/<filename>     generator weights (+ config.json)
    <home>/inception/<filename>                feature-extractor weights (``inception``)
    <home>/stats/<filename>                    reference statistics (ADM batches)
    <home>/stats/features/                     KID features of ADM batches (:mod:`bigganctl.metrics.ref_features`)
    <home>/hashes/                             sha256 records of files outside the cache

Beside every cached file live two hidden helpers: ``.<filename>.lock`` (an ``fcntl`` lock
so two processes never download the same file at once) and ``.<filename>.sha256`` (the
file's sha256, keyed on its size and mtime, so it is computed once). An interrupted
download leaves ``.<filename>.part``, which the next attempt resumes with an HTTP Range
request; nothing else ever appears under the final name until it has been verified.

Offline (``BIGGANCTL_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``) no socket is ever opened: cached
files only, and a missing one raises :class:`WeightsUnavailable` saying how to get it.

The one entry point other modules need is :func:`ensure_file`
(``ensure_file(RemoteFile("VIRTUAL_imagenet128_labeled.npz", (url,)), "stats")``); the HTTP
transport is :mod:`bigganctl._download`.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Union

from . import _download
from ._io import file_lock, sha256_file, sha256_matches
from .errors import ChecksumError, RuntimeFailure, WeightsUnavailable
from .progress import Reporter
from .registry import ASSETS, REGISTRY, Asset, ModelSpec, RemoteFile

# Network knobs (module attributes so tests and users can tune them).
CONNECT_TIMEOUT = float(os.environ.get("BIGGANCTL_HTTP_TIMEOUT", "15"))  # seconds per socket op
RETRIES = 4                  # attempts per URL for transient errors (5xx, resets, stalls)
BACKOFF = 1.0                # seconds; doubles after every failed attempt
USER_AGENT = "bigganctl (+https://github.com/bigganctl)"

_TRUTHY = {"1", "true", "yes", "on"}


def _policy() -> _download.Policy:
    """The knobs as they are now (tests and users may change the module attributes)."""
    return _download.Policy(timeout=CONNECT_TIMEOUT, retries=RETRIES, backoff=BACKOFF, user_agent=USER_AGENT)


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
# Checksums, cached beside the file (or under <home>/hashes for files outside the cache)

def _hash_record_path(path: Path) -> Path:
    path = path.resolve()
    try:
        path.relative_to(home().resolve())
        return path.parent / f".{path.name}.sha256"
    except ValueError:
        import hashlib

        key = hashlib.sha1(str(path).encode()).hexdigest()[:20]
        return home() / "hashes" / f"{key}.json"


def _stat_key(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def cached_sha256(path: str | os.PathLike, *, compute: bool = True) -> str | None:
    """sha256 of ``path``, computed once and remembered (keyed on size + mtime).

    With ``compute=False`` only a remembered value is returned (None if there is none).
    """
    p = Path(path)
    rec = _hash_record_path(p)
    key = _stat_key(p)
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(rec.read_text())
        if data.get("size") == key["size"] and data.get("mtime_ns") == key["mtime_ns"]:
            return str(data["sha256"])
    if not compute:
        return None
    digest = sha256_file(p)
    _remember_sha256(p, digest, key)
    return digest


def _remember_sha256(p: Path, digest: str, key: dict[str, int] | None = None) -> None:
    rec = _hash_record_path(p)
    key = key or _stat_key(p)
    with contextlib.suppress(OSError):   # a read-only cache just means we hash again
        rec.parent.mkdir(parents=True, exist_ok=True)
        tmp = rec.with_name(rec.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({**key, "sha256": digest, "path": str(p)}))
        os.replace(tmp, rec)


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
    expected size/sha256, and ``verified`` (True/False from a remembered sha256, None if
    never hashed; ``bigganctl models verify`` hashes).
    """
    files = []
    for rf in spec.files:
        p = file_path(spec, rf)
        present = p.is_file()
        size = p.stat().st_size if present else None
        verified: bool | None = None
        if present:
            known = cached_sha256(p, compute=False)
            if rf.size is not None and size != rf.size:
                verified = False
            elif known is not None:
                verified = sha256_matches(known, rf.sha256) if rf.sha256 else None
        part = p.with_name(f".{p.name}.part")
        files.append({
            "filename": rf.filename, "path": str(p), "present": present, "size": size,
            "expected_size": rf.size, "expected_sha256": rf.sha256, "verified": verified,
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
    """Hash every cached file of ``spec`` afresh and compare with the registry.

    Returns one dict per file: filename, path, status (``ok`` | ``mismatch`` | ``missing`` |
    ``unknown`` (no reference checksum)), sha256, expected_sha256, size, expected_size.
    Never raises for a mismatch; the caller decides.
    """
    out = []
    for rf in spec.files:
        p = file_path(spec, rf)
        row: dict[str, Any] = {"filename": rf.filename, "path": str(p), "expected_sha256": rf.sha256,
                               "expected_size": rf.size, "sha256": None, "size": None}
        if not p.is_file():
            row["status"] = "missing"
        else:
            row["size"] = p.stat().st_size
            digest = sha256_file(p)
            _remember_sha256(p, digest)
            row["sha256"] = digest
            if (rf.size is not None and row["size"] != rf.size) or not sha256_matches(digest, rf.sha256):
                row["status"] = "mismatch"
            else:
                row["status"] = "ok" if rf.sha256 else "unknown"
        out.append(row)
    return out


def ensure_spec(spec: Spec, *, progress: Reporter | bool | None = None) -> list[Path]:
    """``ensure_file`` for every file of a model or asset; returns their paths."""
    return [ensure_file(rf, subdir_of(spec), progress=progress, pull_name=spec.name,
                        notes=spec.notes, alternative=getattr(spec, "alternative", "--weights PATH"))
            for rf in spec.files]


# ---------------------------------------------------------------------------------------
# ensure_file

def ensure_file(remote: RemoteFile, subdir: str, *, progress: Reporter | bool | None = None,
                pull_name: str | None = None, notes: str = "",
                alternative: str = "--weights PATH") -> Path:
    """Return the path of ``remote`` in the cache, downloading it first if needed.

    ``subdir`` is relative to :func:`home` (``"models/biggan-deep-128"``, ``"inception"``,
    ``"stats"``). A cached file is checked against the expected size and sha256 (the hash
    is remembered, so this is cheap after the first time); a bad cached file is removed
    and fetched again (offline: :class:`ChecksumError`).

    Downloading tries ``remote.urls`` in order (mirrors), with a short connect timeout,
    retries with exponential back-off for transient failures, resumes an interrupted
    transfer from ``.<filename>.part`` with an HTTP Range request, reports the bytes to
    ``progress`` (a :class:`~bigganctl.progress.Reporter`), verifies size and sha256 (mismatch: the file is deleted and
    :class:`ChecksumError` raised; nothing is left in the cache) and moves the file into
    place atomically. ``remote.member`` names a file inside a zip/tar download, which is
    extracted. A per-file ``fcntl`` lock serialises concurrent downloads of one file.

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

    if dest.is_file() and _cached_ok(dest, remote, delete_bad=not offline()):
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

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RuntimeFailure(f"cannot create the cache folder {folder}: {e.strerror or e}") from e
    with file_lock(folder / f".{remote.filename}.lock"):
        # Another process may have finished the download while we waited for the lock.
        if dest.is_file() and _cached_ok(dest, remote, delete_bad=True):
            return dest
        _download_any(remote, dest, name, progress=progress, alternative=alternative)
    return dest


def _cached_ok(dest: Path, remote: RemoteFile, *, delete_bad: bool) -> bool:
    """Is the cached file right? A wrong one is deleted (when we may re-download) or raises."""
    size = dest.stat().st_size
    problem = None
    if remote.size is not None and size != remote.size:
        problem = f"size {size} bytes, expected {remote.size}"
    elif remote.sha256:
        digest = cached_sha256(dest)
        if not sha256_matches(digest, remote.sha256):
            problem = f"sha256 {digest}, expected {remote.sha256}"
    if problem is None:
        return True
    if delete_bad:
        with contextlib.suppress(OSError):
            dest.unlink()
        return False
    raise ChecksumError(f"cached file {dest} is corrupt ({problem})",
                        hint="delete it and run `bigganctl models pull` on a connected machine")


def _download_any(remote: RemoteFile, dest: Path, name: str, *, progress: Reporter | bool | None,
                  alternative: str) -> None:
    errors: list[str] = []
    checksum_failures: list[str] = []
    unreachable = 0
    for url in remote.urls:
        # Plain files download to .<filename>.part; archives to .<archive name>.part
        # (kept for resume until the member is extracted).
        part_name = remote.filename if remote.member is None else _download.url_basename(url)
        part = dest.with_name(f".{part_name}.part")
        try:
            _download.fetch(url, part, progress=progress, label=remote.filename, policy=_policy(),
                            expected_size=None if remote.member else remote.size)
        except _download.Unreachable as e:
            unreachable += 1
            errors.append(f"{url}: {e}")
            continue
        except (_download.Permanent, _download.Transient) as e:
            errors.append(f"{url}: {e}")
            continue
        if remote.member is not None:
            try:
                produced = _download.extract_member(part, remote.member, dest)
            finally:
                with contextlib.suppress(OSError):
                    part.unlink()
        else:
            produced = part
        problem, digest = _check_download(produced, remote)
        if problem:
            with contextlib.suppress(OSError):
                produced.unlink()
            checksum_failures.append(f"{url}: {problem}")
            continue
        os.replace(produced, dest)
        _remember_sha256(dest, digest)
        return
    if checksum_failures:
        raise ChecksumError(f"downloaded {remote.filename} does not match the registry "
                            f"(removed; nothing cached): " + "; ".join(checksum_failures))
    reason = ("the network is unreachable" if unreachable == len(remote.urls)
              else "the download failed")
    raise WeightsUnavailable(unavailable_message(name, remote.filename, reason, alternative),
                             hint="tried: " + "; ".join(errors))


def _check_download(path: Path, remote: RemoteFile) -> tuple[str | None, str]:
    """(problem or None, sha256) of a finished download."""
    size = path.stat().st_size
    digest = sha256_file(path)
    if remote.size is not None and size != remote.size:
        return f"size {size} bytes, expected {remote.size}", digest
    if not sha256_matches(digest, remote.sha256):
        return f"sha256 {digest}, expected {remote.sha256}", digest
    return None, digest


def extract_to_cache(archive: str | os.PathLike, remote: RemoteFile, subdir: str) -> Path:
    """Extract ``remote.member`` from a local archive the user downloaded by hand (e.g. the
    author's ``BigGAN_ch96_bs256x8_138k.zip``) into the cache, verified; returns its path.

    Later runs then find the file without ``--weights``.
    """
    if remote.member is None:
        raise ValueError(f"{remote.filename} is not an archive member")
    folder = home() / subdir
    dest = folder / remote.filename
    if dest.is_file() and _cached_ok(dest, remote, delete_bad=True):
        return dest
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RuntimeFailure(f"cannot create the cache folder {folder}: {e.strerror or e}") from e
    with file_lock(folder / f".{remote.filename}.lock"):
        produced = _download.extract_member(Path(archive), remote.member, dest)
        problem, digest = _check_download(produced, remote)
        if problem:
            with contextlib.suppress(OSError):
                produced.unlink()
            raise ChecksumError(f"{remote.member} in {archive} does not match the registry ({problem})")
        os.replace(produced, dest)
        _remember_sha256(dest, digest)
    return dest
