"""`bigganctl sample` end to end: bad input, outputs, JSON; the acceptance runs with the
real loader (`--weights random`) once bigganctl.weights.loader exists."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import bigganctl.api._shared as core

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def no_load(monkeypatch):
    monkeypatch.setattr(core, "open_generator", lambda *a, **k: pytest.fail("bad input must fail before loading"))


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


ACCEPT = ["--class", "207", "--class", "golden retriever", "--class", "n01443537", "--n", "4",
          "--trunc", "0.5"]


@pytest.mark.parametrize("args, option, needle", [
    (["--class", "1000"], "--class", "out of range"),
    (["--class", "-1"], "--class", "out of range"),
    (["--class", "golden retreiver"], "--class", "did you mean: golden retriever (207)"),
    (["--class", "crane"], "--class", "134 crane"),
    (["--class", "207,crane"], "--class", "517 crane"),
    (["--trunc", "0"], "--trunc", "> 0"),
    (["--trunc", "-0.5"], "--trunc", "> 0"),
    (["--trunc", "1.5"], "--trunc", "(0, 1]"),
    (["--trunc", "nan"], "--trunc", "finite"),
    (["--trunc", "abc"], "--trunc", "not a number"),
    (["--n", "0"], "--n", "positive"),
    (["--seeds", "5-2"], "--seeds", "empty"),
    (["--seeds", "x"], "--seeds", "not an integer"),
    (["--n", "3", "--seeds", "1"], "--seeds", "either"),
    (["--out", "g.bmpx"], "--out", "g.bmpx"),
    (["--npz", "b.txt"], "--npz", "b.txt"),
    (["--nrow", "0"], "--nrow", "positive"),
    (["--model", "biggan-deeep-128"], "--model", "biggan-deep-128"),
    (["--device", "tpu"], "--device", "tpu"),
    (["--dtype", "fp8"], "--dtype", "fp8"),
])
def test_bad_input_exits_2_with_one_line_and_no_output(cli, workdir, no_load, args, option, needle):
    defaults = (["--class", "207"] if "--class" not in args else []) + \
        (["--out", "g.png"] if "--out" not in args else [])
    r = cli("sample", *defaults, *args)
    assert r.exit_code == 2, r.stderr
    msg = r.stderr.strip()
    assert "\n" not in msg and "Traceback" not in msg
    assert msg.startswith(f"error: {option}:"), msg
    assert needle in msg
    assert r.stdout == ""
    assert files_under(workdir) == []


def test_existing_out_is_kept_without_overwrite(cli, workdir, no_load):
    (workdir / "g.png").write_bytes(b"precious")
    r = cli("sample", "--class", "207", "--out", "g.png")
    assert r.exit_code == 2
    assert r.stderr.strip().startswith("error: --out:") and "--overwrite" in r.stderr
    assert (workdir / "g.png").read_bytes() == b"precious"
    assert files_under(workdir) == ["g.png"]


def test_any_existing_output_blocks_the_run(cli, workdir, no_load):
    (workdir / "b.npz.json").write_text("{}")
    r = cli("sample", "--class", "207", "--out", "g.png", "--npz", "b.npz")
    assert r.exit_code == 2 and r.stderr.strip().startswith("error: --npz:")
    assert files_under(workdir) == ["b.npz.json"]


def test_unwritable_output_exits_1_without_traceback(cli, workdir, no_load):
    (workdir / "file").write_text("x")
    r = cli("sample", "--class", "207", "--out", "file/sub/g.png")
    assert r.exit_code == 1
    assert "cannot write" in r.stderr and "Traceback" not in r.stderr
    assert files_under(workdir) == ["file"]


def test_cli_outputs_and_json(cli, workdir, tiny_model):
    r = cli("sample", *ACCEPT, "--out", "out/g.png", "--npz", "b.npz", "--images", "imgs", "--json")
    assert r.exit_code == 0, r.stderr
    doc = r.json()
    assert set(doc) == {"outputs", "manifest", "count", "bytes", "seconds", "resumed_from", "images_per_second"}
    assert doc["count"] == 12 and doc["bytes"]["npz"] == Path("b.npz").stat().st_size
    assert doc["outputs"]["grid"] == os.path.join("out", "g.png")
    assert Image.open("out/g.png").size == (4 * 18 + 2, 3 * 18 + 2)
    m = json.loads(Path("out/g.png.json").read_text())
    assert {k: v for k, v in m.items() if k != "grid"} == doc["manifest"]
    assert [c["index"] for c in m["classes"]] == [207, 207, 1] and m["seeds"] == [0, 1, 2, 3]
    assert m["psi"] == 0.5 and m["truncation"] == "deepmind"
    assert m["command"].startswith("bigganctl sample --class 207 --class 'golden retriever'")
    assert "--trunc 0.5" in m["command"] and "--out out/g.png" in m["command"]
    with np.load("b.npz") as f:
        assert f["arr_0"].shape == (12, 16, 16, 3) and f["arr_1"].tolist() == [207] * 8 + [1] * 4
        grid = np.array(Image.open("out/g.png"))
        assert np.array_equal(grid[2:18, 2 + 18:2 + 18 + 16], f["arr_0"][1])   # row 0, column 1
    assert len(list(Path("imgs").glob("*.png"))) == 8       # 207 twice: 4 files, goldfish: 4
    # text mode: the output paths on stdout, one per line
    r = cli("sample", "--class", "1", "--n", "2", "--quiet")
    assert r.exit_code == 0 and r.stderr == ""
    assert r.stdout.splitlines()[0] == "grid: " + os.path.join("samples", "biggan-deep-128_1_psi1_seeds0-1.png")
    assert Path("samples/biggan-deep-128_1_psi1_seeds0-1.png.json").exists()
    r = cli("sample", "--class", "1", "--n", "2", "--quiet")               # same default --out
    assert r.exit_code == 2 and "--overwrite" in r.stderr
    assert cli("sample", "--class", "1", "--n", "2", "--quiet", "--overwrite").exit_code == 0


def test_help_shows_examples(cli):
    r = cli("sample", "--help")
    assert r.exit_code == 0 and "Examples" in r.stdout and "bigganctl sample --class 207" in r.stdout
    r = cli("classes", "--help")
    assert r.exit_code == 0 and "bigganctl classes retriever" in r.stdout


# ------------------------------------------------------------------ with the real loader

def _grid(path) -> np.ndarray:
    return np.array(Image.open(path)).astype(np.int16)


BASE = ["sample", "--model", "biggan-deep-128", "--weights", "random", *ACCEPT, "--quiet"]


def test_acceptance_with_random_weights(cli, workdir):
    r = cli(*BASE, "--out", "g.png", "--json")
    assert r.exit_code == 0, r.stderr
    doc = r.json()
    assert doc["outputs"]["grid"] == "g.png" and doc["outputs"]["grid_manifest"] == "g.png.json"
    assert Image.open("g.png").size == (4 * 130 + 2, 3 * 130 + 2)      # 3 x 4 tiles of 128 px
    m = json.loads(Path("g.png.json").read_text())
    assert {k: v for k, v in m.items() if k != "grid"} == doc["manifest"]
    assert m["model"] == "biggan-deep-128" and m["weights"]["sha256"] == "random"
    assert m["truncation"] == "deepmind" and m["resolution"] == 128 and m["psi"] == 0.5
    assert [c["index"] for c in m["classes"]] == [207, 207, 1] and m["seeds"] == [0, 1, 2, 3]
    assert _grid("g.png").std() > 5                 # a random model still draws something


@pytest.mark.slow        # fast: tests/api/test_sample.py (same rules, tiny model) and BigGAN-deep's bit-exact batches
@pytest.mark.numerics
def test_batch_size_and_seed_subset_with_random_weights(cli, workdir):
    """BigGAN-deep on the CPU: the same pixels bit for bit for --batch-size 1 vs 7 (one thread
    count: docs/development.md, "Numerics", rule 1), and --seeds 2-3 vs columns 2-3 of --n 4.
    (Before self-attention ran per sample, 11 of 393,216 values moved by one level.)"""
    for bs in ("1", "7"):
        assert cli(*BASE, "--out", f"bs{bs}.png", "--batch-size", bs).exit_code == 0
    assert np.array_equal(_grid("bs1.png"), _grid("bs7.png"))
    seeds = [a for a in BASE if a not in ("--n", "4")] + ["--seeds", "2-3"]
    assert cli(*seeds, "--out", "cols.png").exit_code == 0
    assert np.array_equal(_grid("bs7.png")[:, 2 * 130: 4 * 130 + 2], _grid("cols.png"))


def test_demo_offline_fails_fast_with_the_loader_message(tmp_path):
    env = {**os.environ, "BIGGANCTL_HOME": str(tmp_path / "home"), "BIGGANCTL_OFFLINE": "1",
           "PYTHONPATH": str(ROOT)}
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "bigganctl", "sample", "--class", "207", "--trunc", "0.5",
                        "--out", "out/demo.png", "--overwrite"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stderr
    assert time.monotonic() - t0 < 60
    assert "Traceback" not in r.stderr and r.stderr.startswith("error:")
    assert "models pull" in r.stderr or "--weights" in r.stderr
    assert not (tmp_path / "out" / "demo.png").exists()
