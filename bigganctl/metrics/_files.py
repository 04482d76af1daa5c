"""Cached files for the metrics (Inception weights, reference statistics) via ``bigganctl.hub``.

``bigganctl.hub`` owns the cache, downloads, checksums and the offline rules; this module
only adapts its calls (cache layout ``$BIGGANCTL_HOME/<subdir>/<filename>``).
"""

from __future__ import annotations

from pathlib import Path

from .. import hub
from ..registry import RemoteFile

home = hub.home
offline = hub.offline


def cached(remote: RemoteFile, subdir: str) -> Path | None:
    """The cached copy of ``remote`` if present (nothing is downloaded or hashed)."""
    p = hub.home() / subdir / remote.filename
    return p if p.is_file() else None


def ensure(remote: RemoteFile, subdir: str, *, pull_name: str, alternative: str, progress: bool = True) -> Path:
    """The cached file, downloaded first when online; WeightsUnavailable otherwise."""
    return Path(hub.ensure_file(remote, subdir, progress=progress, pull_name=pull_name, alternative=alternative))
