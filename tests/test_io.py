"""Atomic writes (bigganctl._io): permissions of a normal file, nothing left behind on failure."""

import pytest


def test_atomic_write_permissions_and_no_leftovers(tmp_path):
    import os

    from bigganctl._io import atomic_open

    target = tmp_path / "sub" / "out.txt"
    with atomic_open(target, "w") as fh:
        fh.write("ok")
    umask = os.umask(0)
    os.umask(umask)
    assert target.read_text() == "ok"
    assert (target.stat().st_mode & 0o777) == (0o666 & ~umask)
    with pytest.raises(RuntimeError):
        with atomic_open(tmp_path / "sub" / "bad.txt", "w") as fh:
            fh.write("partial")
            raise RuntimeError("boom")
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["out.txt"]
