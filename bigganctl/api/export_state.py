"""Where a streamed ``sample`` run keeps its unfinished outputs and how it resumes.

Nothing carries a final name before the end:

- ``--npz X.npz`` is written in place as ``.X.npz.part`` (a preallocated, sparse file;
  :mod:`bigganctl.media.npz_stream`), renamed to ``X.npz`` when every row is in;
- ``--images DIR`` files are written (each atomically) into ``DIR/.partial/`` and moved
  into ``DIR`` at the end.

Resume records, JSON, each carrying the sha256 of its own content (``digest``):

- the job record (``.X.npz.part.json``, or ``DIR/.partial/job.json``) holds the *key*:
  everything that decides the bytes (model and weights, plan, seeds, psi, N, resolution,
  precision, device type, world size, batch size). A re-run with another key is refused
  (exit 2) rather than mixed; ``--no-resume`` starts over.
- one state record per process (``....rank{R}.json``) holds how many samples of its share
  are complete (``done``) and the CRC32 of those rows. Written after the rows are synced,
  so it never claims more than the disk holds; on resume the rows on disk are re-read and
  must have that CRC (and the ``--images`` files must exist), else the share starts over.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._io import write_json
from ..errors import RuntimeFailure, UsageError
from ..media import npz_stream

RECORD_VERSION = 1
STAGE = ".partial"


def digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def write_record(path: Path, body: dict[str, Any]) -> None:
    write_json(path, {**body, "digest": digest(body)})


def read_record(path: Path) -> dict[str, Any] | None:
    """The record, or None when it is missing, unreadable or its digest does not match."""
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict):
        return None
    body = {k: v for k, v in rec.items() if k != "digest"}
    return body if rec.get("digest") == digest(body) and body.get("v") == RECORD_VERSION else None


@dataclass(frozen=True)
class StagePaths:
    """The unfinished outputs of one run (see the module docstring)."""

    npz: Path | None           # the final .npz
    images: Path | None        # the final folder

    @property
    def part(self) -> Path | None:
        return None if self.npz is None else self.npz.with_name(f".{self.npz.name}.part")

    @property
    def stage(self) -> Path | None:
        return None if self.images is None else self.images / STAGE

    @property
    def job(self) -> Path:
        return (self.part.with_name(self.part.name + ".json") if self.part is not None
                else self.stage / "job.json")

    def state(self, rank: int) -> Path:
        return self.job.with_name(self.job.name[:-len(".json")] + f".rank{rank}.json")

    def states(self) -> list[Path]:
        stem = self.job.name[:-len(".json")] + ".rank"
        return sorted(self.job.parent.glob(stem + "*.json")) if self.job.parent.is_dir() else []

    def discard(self) -> None:
        """Remove every unfinished output and record."""
        for p in [self.job, *self.states(), self.part]:
            if p is not None:
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
        if self.stage is not None and self.stage.is_dir():
            shutil.rmtree(self.stage)


def differences(old: dict[str, Any], new: dict[str, Any]) -> str:
    keys = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    return ", ".join(f"{k} {_short(old.get(k))} -> {_short(new.get(k))}" for k in keys[:4])


def _short(v: Any) -> str:
    text = json.dumps(v, default=str)
    return text if len(text) <= 40 else text[:16] + "..." + text[-8:]


def prepare(paths: StagePaths, key: dict[str, Any], *, resume: bool, layout: npz_stream.NpzLayout,
            labels, need: int) -> str:
    """Rank 0: keep a resumable run with this key (``"resume"``), or start over (``"fresh"``):
    check the disk, create the preallocated ``.part`` and the staging folder, write the job
    record. A run left by other arguments is refused unless ``resume`` is False."""
    job = read_record(paths.job)
    if job is not None and resume:
        if job["key"] != key:
            raise UsageError(f"an interrupted run with other settings is in {paths.job.name} "
                             f"({differences(job['key'], key)})", param="resume",
                             hint="re-run it with its own arguments to finish it, or pass --no-resume to start over")
        if (paths.part is None or paths.part.is_file()) and (paths.stage is None or paths.stage.is_dir()):
            check_disk(paths, need - _allocated(paths.part))
            return "resume"
    paths.discard()
    check_disk(paths, need)
    try:
        if paths.stage is not None:
            paths.stage.mkdir(parents=True, exist_ok=True)
        if paths.part is not None:
            paths.part.parent.mkdir(parents=True, exist_ok=True)
            npz_stream.create(paths.part, layout, labels.numpy())
        write_record(paths.job, {"v": RECORD_VERSION, "key": key})
    except OSError as e:
        raise RuntimeFailure(f"cannot write {e.filename or paths.job}: {e.strerror or e}") from None
    return "fresh"


def _allocated(path: Path | None) -> int:
    try:
        return os.stat(path).st_blocks * 512 if path is not None else 0
    except OSError:
        return 0


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


def check_disk(paths: StagePaths, need: int) -> None:
    """Refuse (exit 1) a run whose outputs cannot fit on the file system they go to."""
    if need <= 0:
        return
    where = paths.job.parent
    while not where.exists() and where != where.parent:
        where = where.parent
    free = shutil.disk_usage(where).free
    if need > free:
        raise RuntimeFailure(f"not enough disk space in {where}: the outputs need {fmt_bytes(need)}, "
                             f"{fmt_bytes(free)} is free",
                             hint="free some space, write to another disk, or split the run (--seed, --n)")


def resume_point(paths: StagePaths, key_digest: str, *, rank: int, lo: int, hi: int,
                 layout: npz_stream.NpzLayout, files: list[str | None]) -> tuple[int, int]:
    """(samples of ``[lo, hi)`` already complete, CRC32 of their rows) from this rank's
    state, checked against the disk; ``(0, 0)`` when nothing can be trusted."""
    st = read_record(paths.state(rank))
    if st is None or st.get("key") != key_digest or st.get("shard") != [lo, hi]:
        return 0, 0
    done, crc = int(st["done"]), int(st["crc"])
    if not 0 <= done <= hi - lo:
        return 0, 0
    if paths.part is not None:
        try:
            if npz_stream.rows_crc(paths.part, layout, lo, lo + done) != crc:
                return 0, 0
        except (OSError, ValueError):
            return 0, 0
    if paths.stage is not None and any(f and not (paths.stage / f).is_file() for f in files[lo:lo + done]):
        return 0, 0
    return done, crc


def save_point(paths: StagePaths, key_digest: str, *, rank: int, lo: int, hi: int, done: int, crc: int) -> None:
    write_record(paths.state(rank), {"v": RECORD_VERSION, "key": key_digest, "rank": rank, "shard": [lo, hi],
                                     "done": done, "crc": crc})
