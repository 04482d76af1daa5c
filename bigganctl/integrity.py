"""Integrity digests of the state bigganctl writes and reads back (checkpoints, resume
states, reference statistics, hash memos).

A file that comes back altered (a flipped bit, a partial copy, a hand edit) must never
feed a number: every such file carries a sha256 of its payload, which the reader checks
before using anything in it.

- torch checkpoints (``runs/*.pt``): the ``torch.save`` bytes, then a trailer
  ``\\nbigganctl-sha256:<64 hex>\\n`` holding the sha256 of those bytes
  (:func:`save_sealed_torch`, :func:`load_sealed_torch`).
- JSON records: a ``"sha256"`` member holding the digest of the canonical JSON of the
  other members (:func:`seal_json`, :func:`json_verified`).
- ``.npz`` arrays: :func:`arrays_digest` over every array's name, dtype, shape and bytes
  (the reference writer stores it as one more array).

A failed write of such state is never a failure of the run (:func:`quiet_failure`).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ._io import atomic_path

MAGIC = b"\nbigganctl-sha256:"
TRAILER = len(MAGIC) + 64 + 1
DIGEST_KEY = "sha256"


class IntegrityError(Exception):
    """The file's content does not match its digest (or it has none); ``str()`` says why."""


# ----------------------------------------------------------------------------- torch files

class _HashingWriter:
    """A file for ``torch.save`` (which writes sequentially): hashes what passes, and keeps
    the OSError of a failed write (torch reports it as an opaque RuntimeError)."""

    def __init__(self, fh) -> None:
        self.fh, self.h, self.error = fh, hashlib.sha256(), None

    def write(self, b) -> int:
        try:
            n = self.fh.write(b)
        except OSError as e:
            self.error = e
            raise
        self.h.update(b)
        return n

    def flush(self) -> None:
        self.fh.flush()


def save_sealed_torch(obj: Any, target: str | os.PathLike) -> None:
    """``torch.save(obj)`` atomically, followed by the sha256 trailer of the saved bytes.
    A failed write raises the OSError behind it (``No space left on device``)."""
    import torch

    with atomic_path(target) as tmp, open(tmp, "wb") as fh:
        w = _HashingWriter(fh)
        try:
            torch.save(obj, w)
        except RuntimeError:
            if w.error is not None:
                raise w.error from None
            raise
        fh.write(MAGIC + w.h.hexdigest().encode() + b"\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_sealed(path: str | os.PathLike) -> bytes:
    """The payload of a sealed file, verified; IntegrityError when it does not match."""
    data = Path(path).read_bytes()
    if len(data) < TRAILER or not data[-TRAILER:].startswith(MAGIC):
        raise IntegrityError("it carries no integrity digest (truncated, or not written by this version)")
    payload, stored = data[:-TRAILER], data[-TRAILER + len(MAGIC):-1].decode("ascii", "replace")
    actual = hashlib.sha256(payload).hexdigest()
    if actual != stored:
        raise IntegrityError(f"its content does not match its digest (sha256 {actual[:12]}..., "
                             f"recorded {stored[:12]}...): altered or damaged")
    return payload


def load_sealed_torch(path: str | os.PathLike) -> Any:
    """:func:`read_sealed`, then ``torch.load(weights_only=True)`` of the verified bytes."""
    import torch

    payload = read_sealed(path)
    try:
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as e:                # verified bytes that torch cannot read: another version
        raise IntegrityError(f"unreadable ({str(e).splitlines()[0][:120] if str(e) else type(e).__name__})") from None


# ----------------------------------------------------------------------------- JSON records

def _json_digest(doc: dict, key: str) -> str:
    rest = {k: v for k, v in doc.items() if k != key}
    return hashlib.sha256(json.dumps(rest, sort_keys=True, default=str).encode()).hexdigest()


def seal_json(doc: dict, key: str = DIGEST_KEY) -> dict:
    """``doc`` with a ``key`` member: the digest of its canonical JSON."""
    return {**{k: v for k, v in doc.items() if k != key}, key: _json_digest(doc, key)}


def json_verified(doc: Any, key: str = DIGEST_KEY) -> bool:
    """Is ``doc`` a dict whose ``key`` member matches its other members? (A round trip
    through JSON keeps the digest: it is computed over what JSON can hold.)"""
    return isinstance(doc, dict) and isinstance(doc.get(key), str) and doc[key] == _json_digest(doc, key)


# ----------------------------------------------------------------------------- arrays

def arrays_digest(arrays: dict[str, np.ndarray]) -> str:
    """sha256 over every array's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{list(a.shape)}|".encode())
        h.update(memoryview(a).cast("B") if a.size else b"")
    return h.hexdigest()


# ----------------------------------------------------------------------------- failures

def describe_failure(e: BaseException) -> str:
    """``No space left on device`` and the like, from whatever a failed write raised."""
    cause = e if isinstance(e, OSError) else e.__cause__
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return text[:160]
