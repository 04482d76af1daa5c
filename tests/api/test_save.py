"""`sample --npz / --images` at evaluation scale: the streamed ZIP64 .npz (np.load and a
reader that parses the zip headers itself), the evaluation plans (`eval --images` on the
batch equals `eval --model`), resume after SIGKILL (byte-identical), refusals (changed
arguments, absurd grids, a full disk)."""

from __future__ import annotations

import json
import os
import signal
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from tiny_generator import TinyGenerator

import bigganctl
import bigganctl.weights.loader
import bigganctl.media.images
from _killpoint import run_to_killpoint
from _metrics_util import inception_file
from bigganctl.media import npz_stream

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def G(monkeypatch):
    """A 16 px generator in place of the loader (both `sample` and `eval` load through it)."""
    g = TinyGenerator()
    monkeypatch.setattr(bigganctl.weights.loader, "load_generator", lambda *a, **k: g)
    return g


def read_npz_by_hand(path: Path) -> dict[str, np.ndarray]:
    """A streaming reader without zipfile or np.load: local headers (ZIP64 extra), the npy
    header, then the rows in chunks; checks each member's CRC32 against the directory."""
    out, crcs = {}, {}
    with open(path, "rb") as fh:
        fh.seek(-22, os.SEEK_END)
        end = fh.read(22)
        assert struct.unpack("<I", end[:4])[0] == 0x06054B50
        fh.seek(-22 - 20, os.SEEK_END)
        sig, _disk, end64, _n = struct.unpack("<IIQI", fh.read(20))
        assert sig == 0x07064B50                                   # ZIP64 locator
        fh.seek(end64)
        rec = struct.unpack("<IQHHIIQQQQ", fh.read(56))
        assert rec[0] == 0x06064B50 and rec[7] == 2
        fh.seek(rec[9])                                            # the central directory
        for _ in range(2):
            head = struct.unpack("<IHHHHHHIIIHHHHHII", fh.read(46))
            name = fh.read(head[10]).decode()
            extra = fh.read(head[11])
            crcs[name] = head[7]
        fh.seek(0)
        for _ in range(2):
            head = struct.unpack("<IHHHHHIIIHH", fh.read(30))
            assert head[0] == 0x04034B50 and head[3] == 0                # stored, not compressed
            name = fh.read(head[9]).decode()
            extra = fh.read(head[10])
            tag, _ln, size, _csize = struct.unpack("<HHQQ", extra[:20])
            assert tag == 1                                             # ZIP64 sizes
            start = fh.tell()
            assert np.lib.format.read_magic(fh) == (1, 0)
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            assert not fortran
            fh.seek(start)
            crc, body, left = 0, [], size
            while left:                                             # the member in chunks
                block = fh.read(min(left, 1000))
                crc, left = zlib.crc32(block, crc), left - len(block)
                body.append(block)
            assert crc == crcs[name]
            raw = b"".join(body)
            data = raw[len(raw) - int(np.prod(shape)) * dtype.itemsize:]
            out[name[:-4]] = np.frombuffer(data, dtype=dtype).reshape(shape)
    return out


@pytest.mark.numerics
@pytest.mark.parametrize("plan", ["balanced", "random"])
def test_npz_equals_the_in_memory_path(cli, G, tmp_path, plan):
    """Streamed batch by batch (batch 3 over 10 samples), read by np.load and by hand: the
    pixels and labels of bigganctl.sample(), which eval's plan gives."""
    r = cli("sample", "--classes", plan, "--n", "10", "--seed", "5", "--trunc", "0.5", "--batch-size", "3",
            "--npz", tmp_path / "s.npz", "--images", tmp_path / "imgs", "--out", tmp_path / "g.png", "--json",
            "--quiet")
    assert r.exit_code == 0, r.stderr
    doc = r.json()
    res = bigganctl.sample(G, classes=plan, n=10, seed=5, psi=0.5, batch_size=3)    # the same batches
    want = res.images.permute(0, 2, 3, 1).numpy()
    with np.load(tmp_path / "s.npz") as z:
        np.testing.assert_array_equal(z["arr_0"], want)
        np.testing.assert_array_equal(z["arr_1"], res.labels.numpy())
    by_hand = read_npz_by_hand(tmp_path / "s.npz")
    np.testing.assert_array_equal(by_hand["arr_0"], want)
    np.testing.assert_array_equal(by_hand["arr_1"], res.labels.numpy())
    from bigganctl.noise import class_plan
    np.testing.assert_array_equal(res.labels.numpy(), class_plan(plan, 10, 1000, 5)[0].numpy())
    assert doc["count"] == 10 and doc["bytes"]["npz"] == (tmp_path / "s.npz").stat().st_size
    assert doc["seconds"] > 0 and doc["resumed_from"] == 0
    m = json.loads((tmp_path / "s.npz.json").read_text())
    assert m["plan"]["kind"] == plan and m["seed"] == 5 and m["psi"] == 0.5 and m["seeds"] == "5-14"
    assert "--classes " + plan in m["reproduce"]
    files = sorted(p.name for p in (tmp_path / "imgs").iterdir())
    assert files[-1] == "manifest.json" and len(files) == 11 and files[0].startswith("00000_")
    assert not [p for p in tmp_path.rglob(".*")]                      # no part file, no record left
    grid = bigganctl.media.images.make_grid(res.images, 4)           # read back from the rows: 4 per row
    from PIL import Image
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "g.png")), grid.permute(1, 2, 0).numpy())


@pytest.mark.numerics
def test_eval_images_equals_eval_model(cli, G, tmp_path):
    """`sample --classes balanced --npz` then `eval --images` gives `eval --model`'s numbers."""
    rng = np.random.default_rng(0)
    feats = (0.2 + 0.01 * rng.random((12, 2048))).astype(np.float32)
    from bigganctl.metrics.features import extractor_id, weights_sha256
    from bigganctl.metrics.reference import Stats, write_stats
    ref = tmp_path / "ref.npz"
    f64 = feats.astype(np.float64)
    write_stats(ref, Stats(f64.mean(0), np.cov(f64, rowvar=False), feats,
                           {"extractor_id": extractor_id(weights_sha256(inception_file())), "resolution": 16,
                            "count": 12}))
    w = ["--inception-weights", inception_file(), "--device", "cpu", "--json", "--quiet", "--no-resume"]
    common = ["--n", "8", "--seed", "3", "--trunc", "0.7"]
    r = cli("sample", "--classes", "balanced", *common, "--npz", tmp_path / "s.npz", "--no-grid", "--quiet")
    assert r.exit_code == 0, r.stderr
    a = cli("eval", "fid", "--model", "tiny", *common, "--ref", ref, "--batch-size", "4", *w)
    b = cli("eval", "fid", "--images", tmp_path / "s.npz", "--ref", ref, "--batch-size", "4", *w)
    assert a.exit_code == 0 and b.exit_code == 0, (a.stderr, b.stderr)
    fa, fb = a.json()["fid"], b.json()["fid"]
    assert fb == pytest.approx(fa, rel=1e-9, abs=1e-9)               # the same pixels, the same features


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests")])
    return env


@pytest.fixture(scope="module")
def tiny_deep(tmp_path_factory):
    from _tiny_configs import TINY
    from bigganctl.testing import hf

    return Path(hf.write_random_checkpoint(tmp_path_factory.mktemp("deep") / "tiny", TINY, seed=3))


@pytest.mark.numerics
def test_sigkill_at_two_points_then_rerun_is_byte_identical(cli, tiny_deep, tmp_path):
    """Killed after its 2nd state record, re-run and killed again after 2 more, then finished:
    the .npz and the files are those of an uninterrupted run (same batches, same headers)."""
    def args(d):
        return ["sample", "--model", tiny_deep, "--classes", "random", "--n", "9", "--seed", "4", "--trunc", "0.5",
                "--batch-size", "2", "--device", "cpu", "--npz", d / "s.npz", "--images", d / "imgs", "--no-grid",
                "--quiet"]

    ref = cli(*args(tmp_path / "ref"))             # uninterrupted, in this process
    assert ref.exit_code == 0, ref.stderr
    d = tmp_path / "run"
    state = ".s.npz.part.rank0.json"               # the killed runs get this process's thread count
    assert run_to_killpoint(args(d), [state, state], _env()) == -signal.SIGKILL
    assert not (d / "s.npz").exists() and (d / ".s.npz.part").exists()
    assert json.loads((d / state).read_text())["done"] == 4
    assert run_to_killpoint(args(d), [state, state], _env()) == -signal.SIGKILL
    assert json.loads((d / state).read_text())["done"] == 8      # resumed at 4, two batches more
    assert not (d / "s.npz").exists() and not list((d / "imgs").glob("*.png"))
    again = cli(*args(d), "--json")                # finished in this process
    assert again.exit_code == 0, again.stderr
    assert again.json()["resumed_from"] == 8
    assert (d / "s.npz").read_bytes() == (tmp_path / "ref" / "s.npz").read_bytes()
    names = sorted(p.name for p in (d / "imgs").glob("*.png"))
    assert len(names) == 9 and names == sorted(p.name for p in (tmp_path / "ref" / "imgs").glob("*.png"))
    for f in names:
        assert (d / "imgs" / f).read_bytes() == (tmp_path / "ref" / "imgs" / f).read_bytes(), f
    assert not list(d.rglob(".*"))


def _interrupt_after(monkeypatch, batches: int):
    """Ctrl-C after ``batches`` batches are on disk (in this process)."""
    import bigganctl.api.export_state as st

    real, count = st.save_point, [0]

    def save(*a, **k):
        real(*a, **k)
        count[0] += 1
        if count[0] == batches:
            raise KeyboardInterrupt

    monkeypatch.setattr(st, "save_point", save)
    return lambda: monkeypatch.setattr(st, "save_point", real)


@pytest.mark.numerics
def test_changed_arguments_are_refused_and_no_resume_starts_over(cli, G, tmp_path, monkeypatch):
    args = ["sample", "--classes", "balanced", "--n", "6", "--batch-size", "2", "--npz", tmp_path / "s.npz",
            "--no-grid", "--quiet"]
    restore = _interrupt_after(monkeypatch, 1)
    assert cli(*args, "--trunc", "0.5").exit_code == 130
    restore()
    assert (tmp_path / ".s.npz.part").exists() and not (tmp_path / "s.npz").exists()
    r = cli(*args, "--trunc", "0.6")
    assert r.exit_code == 2 and "psi 0.5 -> 0.6" in r.stderr and "--no-resume" in r.stderr
    r = cli(*args, "--trunc", "0.6", "--no-resume", "--json")
    assert r.exit_code == 0 and r.json()["resumed_from"] == 0
    want = bigganctl.sample(G, classes="balanced", n=6, psi=0.6, batch_size=2).images.permute(0, 2, 3, 1).numpy()
    with np.load(tmp_path / "s.npz") as z:
        np.testing.assert_array_equal(z["arr_0"], want)


@pytest.mark.numerics
@pytest.mark.parametrize("tamper", ["record", "rows"])
def test_untrusted_state_starts_the_share_over(cli, G, tmp_path, monkeypatch, tamper):
    """A state record whose digest fails, or rows whose CRC is not the recorded one: nothing
    is trusted, the share is generated again, the file is still right."""
    args = ["sample", "--classes", "random", "--n", "6", "--batch-size", "2", "--npz", tmp_path / "s.npz",
            "--no-grid", "--quiet", "--json"]
    restore = _interrupt_after(monkeypatch, 2)
    assert cli(*args).exit_code == 130
    restore()
    rec = tmp_path / ".s.npz.part.rank0.json"
    if tamper == "record":
        doc = json.loads(rec.read_text())
        doc["done"] = 6                                    # claims more than was written
        rec.write_text(json.dumps(doc))
    else:
        lay = npz_stream.NpzLayout(6, 16, 16)
        with open(tmp_path / ".s.npz.part", "r+b") as fh:
            fh.seek(lay.data + 5)
            fh.write(b"\x07\x07")
    r = cli(*args)
    assert r.exit_code == 0 and r.json()["resumed_from"] == 0
    want = bigganctl.sample(G, classes="random", n=6, batch_size=2).images.permute(0, 2, 3, 1).numpy()
    with np.load(tmp_path / "s.npz") as z:
        np.testing.assert_array_equal(z["arr_0"], want)


@pytest.mark.numerics
def test_resume_continues_in_process(cli, G, tmp_path, monkeypatch):
    args = ["sample", "--classes", "random", "--n", "7", "--batch-size", "2", "--npz", tmp_path / "s.npz",
            "--images", tmp_path / "im", "--no-grid", "--quiet", "--json"]
    ref = cli(*args[:8], tmp_path / "r.npz", "--no-grid", "--quiet")
    assert ref.exit_code == 0, ref.stderr
    restore = _interrupt_after(monkeypatch, 2)
    assert cli(*args).exit_code == 130
    restore()
    r = cli(*args)
    assert r.exit_code == 0 and r.json()["resumed_from"] == 4
    assert (tmp_path / "s.npz").read_bytes() == (tmp_path / "r.npz").read_bytes()
    assert len(list((tmp_path / "im").glob("*.png"))) == 7


@pytest.mark.parametrize("args, option, needle", [
    (["--class", "1", "--n", "2000"], "--n", "too many for a grid"),
    (["--class", "1", "--n", "2000", "--grid", "--npz", "s.npz"], "--grid", "--no-grid"),
    (["--classes", "balanced", "--n", "2000", "--out", "g.png", "--npz", "s.npz"], "--out", "too large"),
    (["--classes", "balanced", "--class", "1"], "--classes", "either --class"),
    (["--classes", "balanced", "--seeds", "1-3"], "--seeds", "--n and --seed"),
    (["--classes", "evenly"], "--classes", "unknown plan"),
])
def test_absurd_or_mixed_plans_exit_2(cli, tmp_path, monkeypatch, args, option, needle):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(bigganctl.weights.loader, "load_generator", lambda *a, **k: pytest.fail("must fail before loading"))
    r = cli("sample", *args)
    assert r.exit_code == 2, r.stderr
    assert r.stderr.startswith(f"error: {option}:") and needle in r.stderr, r.stderr
    assert not list(tmp_path.iterdir())


def test_a_big_plan_leaves_the_grid_out(cli, G, tmp_path):
    r = cli("sample", "--classes", "balanced", "--n", "1100", "--batch-size", "550", "--npz", tmp_path / "s.npz",
            "--quiet", "--json")
    assert r.exit_code == 0, r.stderr
    assert set(r.json()["outputs"]) == {"npz", "npz_manifest"}
    with np.load(tmp_path / "s.npz") as z:
        assert z["arr_0"].shape == (1100, 16, 16, 3) and z["arr_1"][1003] == 3


def test_a_full_disk_is_refused_before_generating(cli, tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    monkeypatch.setattr(bigganctl.weights.loader, "load_generator", lambda *a, **k: TinyGenerator())
    monkeypatch.setattr("bigganctl.generate.generate_batch", lambda *a, **k: pytest.fail("must not generate"))
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**6, 10**6 - 5000, 5000))
    r = cli("sample", "--classes", "balanced", "--n", "50", "--npz", tmp_path / "s.npz", "--no-grid", "--quiet")
    assert r.exit_code == 1, r.stderr
    assert "not enough disk space" in r.stderr and "the outputs need 38." in r.stderr
    assert "4.9 KiB is free" in r.stderr
    assert not list(tmp_path.iterdir())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))


@pytest.mark.numerics
def test_images_alone_stage_in_the_folder_and_the_grid_reads_them_back(cli, G, tmp_path, monkeypatch):
    """--images without --npz: the state lives in DIR/.partial/ with the files until the end;
    a repeated class is one set of files; the grid is decoded from the written PNGs."""
    args = ["sample", "--class", "1,207,1", "--n", "3", "--batch-size", "3", "--images", tmp_path / "im",
            "--out", tmp_path / "g.png", "--quiet"]
    restore = _interrupt_after(monkeypatch, 1)
    assert cli(*args).exit_code == 130
    restore()
    staged = sorted(p.name for p in (tmp_path / "im" / ".partial").iterdir())
    assert "job.json" in staged and "job.rank0.json" in staged and len(staged) == 5     # 3 PNGs of class 1
    assert not list((tmp_path / "im").glob("*.png")) and not (tmp_path / "g.png").exists()
    r = cli(*args, "--json")
    assert r.exit_code == 0 and r.json()["resumed_from"] == 3
    res = bigganctl.sample(G, classes=[1, 207, 1], n=3, batch_size=3)
    from PIL import Image
    grid = bigganctl.media.images.make_grid(res.images, 3).permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "g.png")), grid)
    assert len(list((tmp_path / "im").glob("*.png"))) == 6 and not (tmp_path / "im" / ".partial").exists()
