"""SIGTERM acts like Ctrl-C in a single process: a real SIGTERM,
delivered at a point the process reports (tests/_killpoint.py), saves the checkpoint,
removes temporary files and exits 143 with a message; the re-run resumes."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest

from _killpoint import signal_at_killpoint
from _metrics_util import inception_file, smooth_images, write_folder
from bigganctl.metrics.features import extractor_id, weights_sha256
from bigganctl.metrics.reference import Stats, write_stats

ROOT = Path(__file__).resolve().parents[2]


def _env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "2"
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def evaldata(tmp_path_factory):
    d = tmp_path_factory.mktemp("sigterm")
    imgs = write_folder(d / "A", smooth_images(8, 1, size=32, grid=4))
    rng = np.random.default_rng(0)
    feats = (0.2 + 0.01 * rng.random((8, 2048))).astype(np.float64)
    meta = {"extractor_id": extractor_id(weights_sha256(inception_file())), "resolution": 32, "count": 8}
    write_stats(d / "ref.npz", Stats(feats.mean(0), np.cov(feats, rowvar=False), None, meta))
    return imgs, d / "ref.npz"


@pytest.mark.slow           # ~25 s (two processes); the interp test below is the fast check of SIGTERM
@pytest.mark.numerics
def test_sigterm_saves_the_eval_checkpoint_and_exits_143(cli, evaldata):
    imgs, ref = evaldata
    args = ["eval", "fid", "--images", imgs, "--ref", ref, "--n", "8", "--batch-size", "4", "--checkpoint-every",
            "4", "--json", "--quiet", "--inception-weights", inception_file(), "--device", "cpu"]
    full = cli(*args, "--no-resume")
    assert full.exit_code == 0, full.stderr
    runs = Path(os.environ["BIGGANCTL_HOME"]) / "runs"
    rc, err = signal_at_killpoint(args, ["eval-*.pt"], _env(), signal.SIGTERM)
    assert rc == 143, err
    assert "interrupted by SIGTERM" in err and "Traceback" not in err
    assert list(runs.glob("eval-*.pt")) and not list(runs.glob(".eval-*"))   # saved, no temporary left
    again = cli(*args)
    assert again.exit_code == 0, again.stderr
    assert again.json()["resumed_from"] == 4 and again.json()["fid"] == full.json()["fid"]


def test_sigterm_in_interp_removes_its_temporary_video_and_frames(tmp_path):
    args = ["interp", "--model", "biggan-deep-128", "--weights", "random", "--class", "207", "--class", "1",
            "--steps", "12", "--batch-size", "2", "--out", tmp_path / "v.mp4", "--frames", tmp_path / "f"]
    rc, err = signal_at_killpoint(args, ["frame_*.png", "frame_*.png"], _env(KILLPOINT_IMAGES="1",
                                                                            KILLPOINT_TINY_LOADER="1"),
                                  signal.SIGTERM)
    assert rc == 143, err
    assert "interrupted by SIGTERM" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []          # no .v.mp4.XXXX.mp4, no .f.XXXX/
