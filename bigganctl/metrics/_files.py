"""Cached files for the metrics (Inception weights, reference statistics) via ``bigganctl.hub``.

``bigganctl.hub`` owns the cache, downloads, checksums and the offline rules. This module
only adapts its calls; until the hub is importable a minimal stand-in with the same cache
layout (``$BIGGANCTL_HOME/<subdir>/<filename>``) is used.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import WeightsUnavailable
from ..registry import RemoteFile

_TRUTHY = {"1", "true", "yes", "on"}


def home() -> Path:
    try:
        from ..hub import home as hub_home
    except ImportError:          # pragma: no cover - until bigganctl.hub lands
        env = os.environ.get("BIGGANCTL_HOME")
        return Path(env).expanduser() if env else Path.home() / ".cache" / "bigganctl"
    return hub_home()


def offline() -> bool:
    return any(os.environ.get(k, "").strip().lower() in _TRUTHY for k in ("BIGGANCTL_OFFLINE", "HF_HUB_OFFLINE"))


def cached(remote: RemoteFile, subdir: str) -> Path | None:
    """The cached copy of ``remote`` if present (nothing is downloaded or hashed)."""
    p = home() / subdir / remote.filename
    return p if p.is_file() else None


def ensure(remote: RemoteFile, subdir: str, *, pull_name: str, alternative: str, progress: bool = True) -> Path:
    """The cached file, downloaded first when online; WeightsUnavailable otherwise."""
    try:
        from ..hub import ensure_file
    except ImportError:          # pragma: no cover - until bigganctl.hub lands
        return _fallback(remote, subdir, progress=progress)
    try:
        return Path(ensure_file(remote, subdir, progress=progress, pull_name=pull_name, alternative=alternative))
    except TypeError:            # an ensure_file without the message keywords
        return Path(ensure_file(remote, subdir, progress=progress))


def _fallback(remote: RemoteFile, subdir: str, *, progress: bool) -> Path:
    target = home() / subdir / remote.filename
    if target.is_file():
        return target
    if offline():
        raise WeightsUnavailable(f"{remote.filename} is not in the cache ({target.parent}) and offline mode "
                                 "is on (BIGGANCTL_OFFLINE / HF_HUB_OFFLINE)")
    import torch

    from .._io import atomic_path

    try:
        with atomic_path(target) as tmp:
            torch.hub.download_url_to_file(remote.urls[0], str(tmp), progress=progress)
    except (OSError, RuntimeError) as e:
        raise WeightsUnavailable(f"download of {remote.urls[0]} failed: {e}") from None
    return target
