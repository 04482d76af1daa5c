"""Checksums of files in the cache: the remembered sha256 and trust on first use.

Two small JSON records live beside a cached file (``<home>/hashes/`` for files outside
the cache):

- ``.<filename>.sha256``: a *memo* of the file's sha256, keyed on its size and mtime, so a
  file is hashed once and again only when it changes. It proves nothing by itself.
- ``.<filename>.tofu.json``: the *trust-on-first-use record* of a file whose registry entry
  has no full sha256 (none at all, or only a torch.hub-style prefix): the sha256 and size
  the file had when it first entered the cache, and where it came from. Every later use
  and every later download of that file must match it; ``bigganctl models pull NAME
  --force`` forgets it.

Bookkeeping only: no network (the hub downloads and decides when to check). The cache
root is passed in, so this module needs nothing from :mod:`bigganctl.weights.hub`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import Any

from .._io import sha256_file, sha256_matches
from ..integrity import json_verified, seal_json
from .registry import RemoteFile

_FULL_SHA256 = re.compile(r"[0-9a-f]{64}")


# ---------------------------------------------------------------------------------------
# The memo (a cache of the hash, not a statement about what the file should be)

def memo_path(path: Path, root: Path) -> Path:
    """Where the remembered sha256 of ``path`` lives (beside it inside ``root``)."""
    path = path.resolve()
    try:
        path.relative_to(root.resolve())
        return path.parent / f".{path.name}.sha256"
    except ValueError:
        key = hashlib.sha1(str(path).encode()).hexdigest()[:20]
        return root / "hashes" / f"{key}.json"


def stat_key(path: Path) -> dict[str, int]:
    """What says a file is unchanged without reading it: its size and modification time."""
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _write_json_quietly(target: Path, doc: dict[str, Any]) -> None:
    """Atomic JSON write; a read-only cache just means the record is not kept."""
    with contextlib.suppress(OSError):
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, target)


def cached_sha256(path: str | os.PathLike, root: Path, *, compute: bool = True,
                  verify: bool = False) -> str | None:
    """sha256 of ``path``, computed once and remembered (keyed on size + mtime).

    The memo carries a digest of itself: an altered record (a flipped digest) is not
    believed, the file is hashed again. With ``compute=False`` only a remembered value is
    returned (None if there is none); ``verify=True`` ignores the memo and rewrites it
    (callers do that before blaming another file for a mismatch).
    """
    p = Path(path)
    key = stat_key(p)
    with contextlib.suppress(OSError, ValueError, KeyError):
        data = json.loads(memo_path(p, root).read_text())
        if (not verify and json_verified(data, "check") and data.get("size") == key["size"]
                and data.get("mtime_ns") == key["mtime_ns"] and _FULL_SHA256.fullmatch(str(data["sha256"]))):
            return str(data["sha256"])
    if not compute:
        return None
    digest = sha256_file(p)
    remember_sha256(p, root, digest, key)
    return digest


def remember_sha256(p: Path, root: Path, digest: str, key: dict[str, int] | None = None) -> None:
    _write_json_quietly(memo_path(p, root), seal_json({**(key or stat_key(p)), "sha256": digest,
                                                       "path": str(p)}, "check"))


# ---------------------------------------------------------------------------------------
# Trust on first use

def pinned(remote: RemoteFile) -> bool:
    """Does the registry state the file's full sha256? (Then no TOFU record is needed.)"""
    return bool(remote.sha256 and _FULL_SHA256.fullmatch(remote.sha256.lower()))


def tofu_path(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}.tofu.json")


def read_tofu(dest: Path) -> dict[str, Any] | None:
    """The trust-on-first-use record of a cached file, or None."""
    with contextlib.suppress(OSError, ValueError):
        doc = json.loads(tofu_path(dest).read_text())
        if isinstance(doc, dict) and _FULL_SHA256.fullmatch(str(doc.get("sha256", ""))):
            return doc
    return None


def record_tofu(dest: Path, digest: str, size: int, source: str) -> None:
    """Record the sha256 and size a file had when it first entered the cache (atomic)."""
    _write_json_quietly(tofu_path(dest), {
        "sha256": digest, "size": size, "source": source,
        "recorded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})


def forget(dest: Path, *, keep_record: bool = False) -> None:
    """Remove a cached file with its part file, memo and (unless ``keep_record``) its TOFU
    record (``pull --force``)."""
    for p in (dest, dest.with_name(f".{dest.name}.part"), dest.with_name(f".{dest.name}.sha256"),
              *(() if keep_record else (tofu_path(dest),))):
        with contextlib.suppress(OSError):
            p.unlink()


def tofu_problem(digest: str, size: int, record: dict[str, Any]) -> str | None:
    """Why a file does not match its TOFU record (None when it does)."""
    if record.get("size") is not None and size != record["size"]:
        return f"size {size} bytes, recorded {record['size']} at its first download ({record.get('recorded', '?')})"
    if not sha256_matches(digest, record["sha256"]):
        return (f"sha256 {digest}, recorded {record['sha256']} at its first download "
                f"({record.get('recorded', '?')})")
    return None


def registry_problem(digest: str, size: int, remote: RemoteFile) -> str | None:
    """Why a file does not match the registry's size and sha256 (None when it does or
    when the registry states neither)."""
    if remote.size is not None and size != remote.size:
        return f"size {size} bytes, expected {remote.size}"
    if not sha256_matches(digest, remote.sha256):
        return f"sha256 {digest}, expected {remote.sha256}"
    return None


def checksum_kind(remote: RemoteFile, dest: Path) -> str:
    """``pinned`` (the registry states the sha256), ``tofu`` (recorded on first use) or
    ``unknown`` (neither yet)."""
    if pinned(remote):
        return "pinned"
    return "tofu" if read_tofu(dest) is not None else "unknown"


class Trust:
    """Trust on first use of one cached file ``dest`` (inactive when the registry pins its
    full sha256). ``name``/``subdir`` only word the re-fetch instruction."""

    def __init__(self, remote: RemoteFile, dest: Path, name: str, subdir: str) -> None:
        self.active = not pinned(remote)
        self.dest, self.name, self.subdir = dest, name, subdir

    @property
    def recorded(self) -> bool:
        return self.active and read_tofu(self.dest) is not None

    def hint(self) -> str:
        """How to fetch the file again, and how to trust a legitimately changed source."""
        if self.subdir == "stats":
            cmd = f"bigganctl stats pull {self.name}"
            force = f"delete {tofu_path(self.dest)} and run `{cmd}`"
        else:
            cmd = f"bigganctl models pull {self.name}"
            force = f"`{cmd} --force` forgets the record and trusts the new file"
        return (f"run `{cmd}` to download it again (verified against the recorded sha256); "
                f"if the source changed on purpose, {force}")

    def problem(self, digest: str, size: int) -> str | None:
        """Why a file does not match the sha256 recorded at its first download (or None)."""
        record = read_tofu(self.dest) if self.active else None
        return tofu_problem(digest, size, record) if record else None

    def accept(self, digest: str, size: int, source: str) -> None:
        """Record the file's sha256 and size if this is its first use."""
        if self.active and read_tofu(self.dest) is None:
            record_tofu(self.dest, digest, size, source)
