"""Faults end to end, as a user meets them: every command is a real
``python -m bigganctl`` process (through tests/_killpoint.py, which can swap in the tiny
test generator and stop the process at a point it reports), faults are real (flipped
bytes, a full or read-only tmpfs, SIGTERM), and every class is held to the same rules:

- never exit 0 with a wrong number;
- never a traceback;
- never a partial output under a final name.

Slow tier (~2-3 min on 2 cores): ``pytest -m slow tests/system/test_fault_campaign.py``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from _killpoint import signal_at_killpoint
from _metrics_util import inception_file, smooth_images, write_folder
from _tmpfs import small_tmpfs
from bigganctl.integrity import TRAILER

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
RUNNER = [sys.executable, str(ROOT / "tests" / "_killpoint.py"), "no-such-file", "--"]


def _env(home: Path, **extra) -> dict:
    env = dict(os.environ)
    env.update(PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""), OMP_NUM_THREADS="2",
               BIGGANCTL_HOME=str(home), KILLPOINT_TINY_LOADER="1", **extra)
    return env


def run(home: Path, *args, **extra) -> subprocess.CompletedProcess:
    r = subprocess.run([*RUNNER, *map(str, args)], env=_env(home, **extra), capture_output=True, text=True,
                       timeout=300)
    assert "Traceback" not in r.stderr, r.stderr
    return r


def no_partial(folder: Path) -> None:
    left = [p for p in folder.rglob(".*") if p.name not in (".", "..")]
    assert not left, f"temporaries left: {left}"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("campaign")
    imgs = write_folder(d / "A", smooth_images(8, 1, size=32, grid=4))
    refimgs = write_folder(d / "B", smooth_images(8, 2, size=32, grid=8))
    home = d / "home"
    w = ["--inception-weights", inception_file(), "--device", "cpu", "--quiet"]
    r = run(home, "stats", "compute", refimgs, "--out", d / "R.npz", "--keep-features", *w)
    assert r.returncode == 0, r.stderr
    base = ["eval", "fid", "--images", imgs, "--ref", d / "R.npz", "--n", "8", "--batch-size", "4",
            "--checkpoint-every", "4", "--json", *w]
    r = run(home, *base, "--no-resume")
    assert r.returncode == 0, r.stderr
    return {"dir": d, "imgs": imgs, "ref": d / "R.npz", "w": w, "eval": base, "fid": json.loads(r.stdout)["fid"]}


def test_sigterm_then_a_flipped_checkpoint_never_gives_a_wrong_fid(world, tmp_path):
    home = tmp_path / "home"
    rc, err = signal_at_killpoint(world["eval"], ["eval-*.pt"], _env(home), signal.SIGTERM)
    assert rc == 143 and "SIGTERM" in err
    (ckpt,) = (home / "runs").glob("eval-*.pt")
    data = bytearray(ckpt.read_bytes())
    data[(len(data) - TRAILER) // 2] ^= 0x40                # one bit in the middle of the payload
    ckpt.write_bytes(bytes(data))
    r = run(home, *world["eval"], "--max-fid", "1e9")
    assert r.returncode == 0 and "does not match its digest" in r.stderr
    assert json.loads(r.stdout)["fid"] == world["fid"] and json.loads(r.stdout)["resumed_from"] == 0


@pytest.mark.parametrize("ro", [False, True], ids=["full", "read-only"])
def test_a_home_that_cannot_keep_checkpoints_still_gives_the_result(world, tmp_path, ro):
    with small_tmpfs(tmp_path / "home", size="64k", ro=ro) as home:
        r = run(home, *world["eval"])
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["fid"] == world["fid"]
        assert r.stderr.count("cannot save the checkpoint") == 1
        no_partial(home)


def test_seeds_beyond_2_to_the_32_do_not_alias(tmp_path):
    r = run(tmp_path / "home", "sample", "--model", "biggan-deep-128", "--weights", "random", "--class", "1",
            "--seeds", "4294967296,0", "--npz", tmp_path / "s.npz", "--no-grid", "--quiet")
    assert r.returncode == 0, r.stderr
    with np.load(tmp_path / "s.npz") as z:
        assert not np.array_equal(z["arr_0"][0], z["arr_0"][1])


def test_a_16_bit_png_gives_the_statistics_of_its_8_bit_picture(world, tmp_path):
    from PIL import Image

    for d in ("a8", "a16"):
        (tmp_path / d).mkdir()
    for i, f in enumerate(sorted(world["imgs"].iterdir())[:3]):
        g = np.asarray(Image.open(f).convert("L"))
        Image.fromarray(g).save(tmp_path / "a8" / f"{i}.png")
        Image.fromarray(g.astype(np.uint16) * 257).save(tmp_path / "a16" / f"{i}.png")
    for d in ("a8", "a16"):
        assert run(tmp_path / "home", "stats", "compute", tmp_path / d, "--out", tmp_path / f"{d}.npz",
                   *world["w"]).returncode == 0
    with np.load(tmp_path / "a8.npz") as a, np.load(tmp_path / "a16.npz") as b:
        np.testing.assert_array_equal(a["mu"], b["mu"])


@pytest.mark.parametrize("alter, why", [(lambda s: -s, "negative variance"),
                                        (lambda s: s + np.triu(np.ones_like(s), 1), "not symmetric")])
def test_a_reference_sigma_that_is_no_covariance_exits_2(world, tmp_path, alter, why):
    with np.load(world["ref"]) as z:
        np.savez(tmp_path / "bad.npz", mu=z["mu"], sigma=alter(z["sigma"]))
    r = run(tmp_path / "home", "eval", "fid", "--images", world["imgs"], "--ref", tmp_path / "bad.npz",
            "--max-fid", "0.5", "--force", *world["w"])
    assert r.returncode == 2 and why in r.stderr and "bad.npz" in r.stderr


def test_a_full_disk_sample_leaves_nothing_and_the_rerun_works(tmp_path):
    with small_tmpfs(tmp_path / "disk", size="128k") as disk:
        st = os.statvfs(disk)
        (disk / "filler").write_bytes(b"\0" * (st.f_bavail * st.f_frsize - 3 * 4096))
        args = ["sample", "--model", "biggan-deep-128", "--weights", "random", "--class", "207", "--n", "8",
                "--images", disk / "imgs", "--out", disk / "g.png", "--npz", disk / "x.npz", "--quiet"]
        r = run(tmp_path / "home", *args)
        assert r.returncode == 1 and ("No space left" in r.stderr or "not enough disk space" in r.stderr)
        finals = [p for p in disk.rglob("*") if p.is_file()
                  and not any(q.startswith(".") for q in p.relative_to(disk).parts)]
        assert [p.name for p in finals] == ["filler"]      # hidden: the streamed run's resume state
        (disk / "filler").unlink()
        r = run(tmp_path / "home", *args)                  # resumes; no --overwrite needed
        assert r.returncode == 0, r.stderr
        no_partial(disk)


def test_sigterm_in_interp_leaves_nothing(tmp_path):
    args = ["interp", "--model", "biggan-deep-128", "--weights", "random", "--class", "207", "--class", "1",
            "--steps", "12", "--batch-size", "2", "--out", tmp_path / "v.mp4", "--frames", tmp_path / "f"]
    rc, err = signal_at_killpoint(args, ["frame_*.png"], _env(tmp_path / "home", KILLPOINT_IMAGES="1"),
                                  signal.SIGTERM)
    assert rc == 143 and "Traceback" not in err
    assert [p.name for p in tmp_path.iterdir()] == ["home"] or list(tmp_path.iterdir()) == []


def test_a_wrong_hash_memo_does_not_blame_a_valid_reference(world, tmp_path):
    home = tmp_path / "home"
    assert run(home, *world["eval"]).returncode == 0
    (memo,) = (home / "hashes").glob("*.json")
    memo.write_text(memo.read_text().replace('"sha256": "', '"sha256": "00', 1))
    r = run(home, *world["eval"])
    assert r.returncode == 0 and json.loads(r.stdout)["fid"] == world["fid"], r.stderr


def test_hostile_inputs_exit_2_with_one_line(world, tmp_path):
    folder = tmp_path / "odd"
    folder.mkdir()
    for i, name in enumerate((b"caf\xe9.png", b"\xff.png")):
        from PIL import Image

        Image.fromarray(np.full((32, 32, 3), 60 * i, np.uint8)).save(
            os.fsdecode(os.path.join(os.fsencode(folder), name)), format="PNG")
    r = run(tmp_path / "home", "stats", "compute", folder, "--out", tmp_path / "s.npz", *world["w"])
    assert r.returncode == 0, r.stderr                      # not-UTF-8 names are read
    one = write_folder(tmp_path / "one", smooth_images(1, 0, size=32))
    r = run(tmp_path / "home", "stats", "compute", one, "--out", tmp_path / "t.npz", *world["w"])
    assert r.returncode == 2 and "holds 1 image" in r.stderr
    r = run(tmp_path / "home", "eval", "is", "--model", "biggan-deep-128", "--weights", "random",
            "--n", str(10 ** 12), *world["w"])
    assert r.returncode == 2 and "--n" in r.stderr and "GiB" in r.stderr
    r = run(tmp_path / "home", "sample", "--class", "1", "--seeds", str(2 ** 63), "--npz", tmp_path / "q.npz",
            "--no-grid", "--quiet")
    assert r.returncode == 2 and "--seeds" in r.stderr
    assert not (tmp_path / "s.npz.json").exists() and not (tmp_path / "t.npz").exists()
