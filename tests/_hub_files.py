"""Payloads and small helpers of the weight-cache tests (hub, download, checksums) that run
against the local HTTP server of :mod:`_httpserver`."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

PAYLOAD = os.urandom(3 * 1024 * 1024 + 123)          # > 3 chunks, not chunk-aligned
SHA = hashlib.sha256(PAYLOAD).hexdigest()

SMALL = os.urandom(64 * 1024 + 7)
SMALL_SHA = hashlib.sha256(SMALL).hexdigest()


def visible(folder: Path) -> list[str]:
    """The names in ``folder`` (hidden ones too), sorted; [] if it does not exist."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []
