"""`bigganctl interp` end to end.

Most tests run the command with a stand-in loader that returns a tiny generator (fast);
the acceptance tests at the bottom use the real loader with ``--weights random``.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from _interp_tiny import (
    Interrupting,
    TinyGenerator,
    assert_pixels_close,
    install_fake_loader,
)
from PIL import Image

from bigganctl.generate import iter_uint8


@pytest.fixture
def work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def fake(monkeypatch, work):
    install_fake_loader(monkeypatch, resolution=32)
    return work


def _decode_mp4(path):
    import imageio.v2 as iio

    r = iio.get_reader(path)
    try:
        return [f for f in r], r.get_meta_data()
    finally:
        r.close()


def _pngs(folder):
    return [np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("frame_*.png"))]


def _mad(a, b) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


BASE = ("interp", "--model", "biggan-deep-128", "--weights", "random", "--class", "207", "--class", "1")


# ---------------------------------------------------------------------------- with the stand-in loader


def test_mp4_frame_count_size_rate_and_manifest(cli, fake):
    r = cli(*BASE, "--steps", "12", "--fps", "12", "--out", "v.mp4")
    assert r.exit_code == 0, r.stderr
    frames, meta = _decode_mp4(fake / "v.mp4")
    assert len(frames) == 13 and frames[0].shape == (32, 32, 3) and meta["fps"] == 12
    m = json.loads((fake / "v.mp4.json").read_text())
    assert m["frames"] == 13 and m["steps"] == 12 and m["fps"] == 12 and m["z"] == "fixed"
    assert m["waypoint_frames"] == [0, 12] and m["seeds"] == [[0, 0]] and m["psi"] == 1.0
    assert m["truncation"] == "deepmind" and m["weights"]["sha256"] == "random"
    assert [c["index"] for c in m["classes"]] == [207, 1] and m["model"] == "biggan-deep-128"
    assert {"torch", "bigganctl", "pillow"} <= set(m["versions"]) and m["kind"] == "bigganctl.interp"


@pytest.mark.parametrize("ext", ["gif", "webp"])
def test_gif_and_webp_have_the_same_frame_count(cli, fake, ext):
    r = cli(*BASE, "--steps", "12", "--fps", "12", "--out", f"v.{ext}")
    assert r.exit_code == 0, r.stderr
    im = Image.open(fake / f"v.{ext}")
    assert im.n_frames == 13 and im.size == (32, 32)


def test_loop_adds_the_return_segment(cli, fake):
    r = cli(*BASE, "--steps", "12", "--loop", "--out", "v.gif", "--frames", "f")
    assert r.exit_code == 0, r.stderr
    fr = _pngs(fake / "f")
    assert Image.open(fake / "v.gif").n_frames == len(fr) == 24
    ends = _mad(fr[0], fr[12])
    assert _mad(fr[23], fr[0]) <= 0.35 * ends       # the last frame leads back to the first
    assert _mad(fr[23], fr[12]) > 0.5 * ends


@pytest.mark.numerics
def test_waypoint_frames_equal_the_generator_samples(cli, fake):
    r = cli(*BASE, "--steps", "6", "--trunc", "0.7", "--seed", "5", "--out", "v.gif", "--frames", "f")
    assert r.exit_code == 0, r.stderr
    fr = _pngs(fake / "f")
    G = TinyGenerator(resolution=32)
    for cls, f in [(207, 0), (1, 6)]:
        _, ref = next(iter_uint8(G, torch.tensor([cls]), [5], 0.7))
        assert_pixels_close(fr[f], ref[0].permute(1, 2, 0).numpy())


def test_seed_grid_with_caption_and_json(cli, fake):
    r = cli(*BASE, "--steps", "3", "--seeds", "0-2", "--z", "slerp", "--caption", "--out", "g.webp", "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)                               # exactly one JSON document
    assert doc["out"] == "g.webp" and doc["manifest_path"] == "g.webp.json"
    m = doc["manifest"]
    assert m["seeds"] == [[0, 1], [1, 2], [2, 3]] and m["caption"] is True and m["frames"] == 4
    assert m["width"] == 3 * 32 + 2 * 2 and m["height"] > 32 and m["height"] % 2 == 0
    assert Image.open(fake / "g.webp").size == (m["width"], m["height"])


def test_one_class_walks_through_seeds(cli, fake):
    r = cli("interp", "--weights", "random", "-c", "207", "--z", "slerp", "--seeds", "0-2", "--steps", "3",
            "--loop", "--out", "w.gif", "--json")
    assert r.exit_code == 0, r.stderr
    m = r.json()["manifest"]
    assert m["frames"] == 9 and m["seeds"] == [[0, 1, 2]] and m["waypoint_classes"] == [207, 207, 207]


@pytest.mark.parametrize("args,option", [
    (("-c", "207", "--out", "v.mp4"), "--class"),
    (("-c", "207", "--seeds", "0-3", "--out", "v.mp4"), "--class"),
    (("-c", "207", "--z", "slerp", "--out", "v.mp4"), "--class"),
    (("-c", "207", "-c", "1", "--steps", "1", "--out", "v.mp4"), "--steps"),
    (("-c", "207", "-c", "1", "--fps", "0", "--out", "v.mp4"), "--fps"),
    (("-c", "207", "-c", "1", "--fps", "60", "--out", "v.gif"), "--fps"),
    (("-c", "207", "-c", "1", "--out", "v.avi2"), "--out"),
    (("-c", "207", "-c", "1000", "--out", "v.mp4"), "--class"),
    (("-c", "207", "-c", "-1", "--out", "v.mp4"), "--class"),
    (("-c", "207", "-c", "golden retreiver", "--out", "v.mp4"), "--class"),
    (("-c", "207", "-c", "1", "--z", "lerp", "--out", "v.mp4"), "--z"),
    (("-c", "207", "-c", "1", "--ease", "cubic", "--out", "v.mp4"), "--ease"),
    (("-c", "207", "-c", "1", "--seed", "1", "--seeds", "0-3", "--out", "v.mp4"), "--seeds"),
    (("-c", "207", "-c", "1", "--seeds", "5-2", "--out", "v.mp4"), "--seeds"),
    (("-c", "207", "-c", "1", "--trunc", "0", "--out", "v.mp4"), "--trunc"),
    (("-c", "207", "-c", "1", "--trunc", "1.5", "--out", "v.mp4"), "--trunc"),
    (("-c", "207", "-c", "1", "--trunc", "nan", "--out", "v.mp4"), "--trunc"),
    (("-c", "207", "-c", "1", "--nrow", "0", "--out", "v.mp4"), "--nrow"),
])
def test_bad_input_exits_2_naming_the_option(cli, work, monkeypatch, args, option):
    def must_not_load(*a, **k):
        pytest.fail("bad input must fail before the model loads")

    install_fake_loader(monkeypatch)
    monkeypatch.setattr(sys.modules["bigganctl.weights.loader"], "load_generator", must_not_load)
    r = cli("interp", "--weights", "random", *args)
    assert r.exit_code == 2, (r.stdout, r.stderr)
    assert r.stderr.startswith(f"error: {option}:") and r.stderr.count("\n") <= 2, r.stderr
    assert "Traceback" not in r.stderr
    assert list(work.iterdir()) == []


def test_unknown_class_suggests_and_names_resolve(cli, fake):
    r = cli(*BASE[:5], "-c", "golden retreiver", "-c", "1", "--out", "v.gif")
    assert r.exit_code == 2 and "golden retriever" in r.stderr
    r = cli(*BASE[:5], "-c", "golden retriever,goldfish", "-c", "n09472597", "--steps", "2", "--caption",
            "--out", "v.gif", "--json")
    assert r.exit_code == 0, r.stderr
    m = r.json()["manifest"]
    assert m["waypoint_classes"] == [207, 1, 980]
    assert [c["name"] for c in m["classes"]] == ["golden retriever", "goldfish", "volcano"]


def test_existing_outputs_need_overwrite(cli, fake):
    assert cli(*BASE, "--steps", "2", "--out", "v.gif").exit_code == 0
    before = (fake / "v.gif").read_bytes()
    r = cli(*BASE, "--steps", "3", "--out", "v.gif")
    assert r.exit_code == 2 and "--overwrite" in r.stderr and (fake / "v.gif").read_bytes() == before
    (fake / "f").mkdir()
    (fake / "f" / "x.png").write_bytes(b"")
    r = cli(*BASE, "--steps", "3", "--out", "w.gif", "--frames", "f")
    assert r.exit_code == 2 and "--frames" in r.stderr and not (fake / "w.gif").exists()
    r = cli(*BASE, "--steps", "3", "--out", "v.gif", "--overwrite")
    assert r.exit_code == 0 and Image.open(fake / "v.gif").n_frames == 4


def test_without_the_mp4_backend_exit_1_names_the_package(cli, fake, monkeypatch):
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)
    r = cli(*BASE, "--out", "v.mp4")
    assert r.exit_code == 1 and "imageio-ffmpeg" in r.stderr and "Traceback" not in r.stderr
    assert list(fake.iterdir()) == []


def test_interrupt_exits_130_and_leaves_nothing(cli, work, monkeypatch):
    install_fake_loader(monkeypatch, cls=Interrupting, after=3, resolution=32)
    r = cli(*BASE, "--steps", "12", "--batch-size", "2", "--out", "v.mp4", "--frames", "f")
    assert r.exit_code == 130
    assert list(work.iterdir()) == []


def test_help_has_examples(cli):
    r = cli("interp", "--help")
    assert r.exit_code == 0
    for text in ("Examples", "bigganctl interp --class 207 --class 1", "--z", "--loop", "--frames", "13 frames"):
        assert text in r.stdout


# ---------------------------------------------------------------------------- the real loader (acceptance)


def test_acceptance_command(cli, work):
    # Two classes, 12 steps at 12 fps to MP4 (plus --frames, lossless copies of the frames for the checks).
    r = cli("interp", "--model", "biggan-deep-128", "--weights", "random", "--class", "207", "--class", "1",
            "--steps", "12", "--fps", "12", "--out", "v.mp4", "--frames", "f")
    assert r.exit_code == 0, r.stderr
    frames, meta = _decode_mp4(work / "v.mp4")
    assert len(frames) == 13 and frames[0].shape == (128, 128, 3) and meta["fps"] == 12
    m = json.loads((work / "v.mp4.json").read_text())
    assert m["weights"]["sha256"] == "random" and m["frames"] == 13
    # Gradual: no step is a jump. Random weights give high-frequency images, so the mean
    # absolute difference saturates quickly (one step is ~0.4 of the endpoint difference);
    # an abrupt class switch would put ~1.0 into one step and ~0 into the others.
    fr = _pngs(work / "f")
    assert len(fr) == 13
    ends = _mad(fr[0], fr[12])
    steps = [_mad(a, b) for a, b in zip(fr, fr[1:])]
    assert ends > 5
    assert max(steps) <= 0.6 * ends, (steps, ends)
    assert max(steps) <= 1.5 * float(np.median(steps)), steps
    dist = [_mad(fr[0], f) for f in fr]
    assert all(b > a for a, b in zip(dist[:4], dist[1:5]))      # moving away from the start


def _sample_refs(classes, seed, psi):
    """What `bigganctl sample` makes for (class, seed, psi), each image in a batch of one."""
    import bigganctl

    res = bigganctl.sample(model="biggan-deep-128", classes=classes, n=1, seed=seed, psi=psi,
                           weights="random", batch_size=1)
    return list(res.images)


@pytest.mark.numerics
def test_acceptance_waypoints_match_sample(cli, work):
    # --batch-size 1 on both sides: float kernels then see the same shapes and the pixels
    # must match exactly (across batch shapes they may differ by one level, see sampling.md).
    r = cli("interp", "--model", "biggan-deep-128", "--weights", "random", "--class", "207", "--class", "1",
            "--steps", "2", "--trunc", "0.5", "--seed", "3", "--batch-size", "1", "--out", "v.gif",
            "--frames", "f")
    assert r.exit_code == 0, r.stderr
    fr = _pngs(work / "f")
    assert len(fr) == 3 and Image.open(work / "v.gif").n_frames == 3
    refs = _sample_refs([207, 1], 3, 0.5)
    assert np.array_equal(fr[0], refs[0].permute(1, 2, 0).numpy())
    assert np.array_equal(fr[2], refs[1].permute(1, 2, 0).numpy())
    assert not np.array_equal(fr[1], fr[0]) and not np.array_equal(fr[1], fr[2])
