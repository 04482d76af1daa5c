"""Checkpoint helpers of the loader and format tests: a hash of a loaded generator's state,
and an object whose unpickling would run code (creating a marker file)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def state_hash(G) -> str:
    h = hashlib.sha256()
    for k, v in sorted(G.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().float().numpy().tobytes())
    return h.hexdigest()


class MarkerPickle:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))      # unpickling would create the marker
