"""Outputs under faults: the files of one command appear
together or not at all on a really full disk (a small tmpfs), the error names the file,
and the re-run is not refused because of leftovers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from _tmpfs import small_tmpfs


def _fill(folder: Path, leave: int) -> Path:
    """A filler file that leaves about ``leave`` bytes free on ``folder``'s filesystem."""
    st = os.statvfs(folder)
    free = st.f_bavail * st.f_frsize
    filler = folder / "filler"
    filler.write_bytes(b"\0" * max(0, free - leave))
    return filler


@pytest.mark.parametrize("outputs", [
    ["--no-grid", "--images", "imgs"],
    ["--out", "g.png", "--npz", "x.npz"],
    ["--out", "g.png", "--npz", "x.npz", "--images", "imgs"],
    ["--out", "g.png"],
], ids=["images", "grid+npz", "all", "grid"])
@pytest.mark.parametrize("pages", [3, 6, 9])     # refused up front, or out of space while writing
def test_a_full_disk_leaves_no_output_and_the_rerun_is_not_refused(cli, tiny_model, tmp_path, monkeypatch, outputs,
                                                                    pages):
    with small_tmpfs(tmp_path / "disk", size="256k") as disk:
        monkeypatch.chdir(disk)
        args = ["sample", "--class", "207", "--class", "1", "--n", "4", "--quiet", *outputs]
        full = _fill(disk, leave=pages * 4096)        # room for a few small files, not for all
        r = cli(*args)
        assert r.exit_code in (0, 1), r.stderr
        assert "Traceback" not in r.stderr
        if r.exit_code == 0:                          # it fitted: then everything is there
            full.unlink()
            return
        assert "No space left on device" in r.stderr or "not enough disk space" in r.stderr, r.stderr
        finals = [p for p in disk.rglob("*") if p.is_file() and not any(q.startswith(".") for q in
                                                                         p.relative_to(disk).parts)]
        assert [p.name for p in finals] == ["filler"], finals   # hidden files: the run's resume state
        full.unlink()
        again = cli(*args)                            # no --overwrite needed: nothing was left
        assert again.exit_code == 0, again.stderr
        names = {p.name for p in disk.rglob("*") if p.is_file()}
        assert not [n for n in names if n.startswith(".")]           # no temporary left
        if "--images" in outputs:
            assert len([n for n in names if n.endswith(".png") and n != "g.png"]) == 8 and "manifest.json" in names
        if "--npz" in outputs:
            assert {"g.png", "g.png.json", "x.npz", "x.npz.json"} <= names
