"""Rendering an interpolation (bigganctl.api.interp) with a tiny test generator: waypoint frames
equal generated samples, frames do not depend on the batch size and change gradually, every
video format decodes to all its frames, a failure or an old frames folder leaves nothing stale."""

from __future__ import annotations


import numpy as np
import pytest
import torch
from _interp_tiny import Interrupting, TinyGenerator, assert_pixels_close
from PIL import Image

from bigganctl.generate import iter_uint8
from bigganctl.paths import (
    make_path,
)
from bigganctl.api.interp import render_interp
from bigganctl.generate import iter_interp_tiles


@pytest.fixture(scope="module")
def G():
    return TinyGenerator(resolution=32)


def _png_frames(folder):
    return [np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("frame_*.png"))]


def _mad(a, b) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


# ---------------------------------------------------------------------------- paths


# ---------------------------------------------------------------------------- conditions


# ---------------------------------------------------------------------------- frames


@pytest.mark.numerics
def test_waypoint_frames_equal_generated_samples(G, tmp_path):
    """The frame on a waypoint is what `sample` makes for that class, seed and psi."""
    p = make_path([207, 1, 88], [3, 11], steps=4, z_mode="slerp")
    render_interp(G, p, tmp_path / "v.gif", psi=0.6, fps=10, frames_dir=tmp_path / "f", batch_size=5)
    frames = _png_frames(tmp_path / "f")
    assert len(frames) == p.n_frames == 9
    R = G.resolution
    for k, f in enumerate(p.waypoint_frames()):
        for j in range(p.n_columns):
            _, ref = next(iter_uint8(G, torch.tensor([p.classes[k]]), [p.seeds[j][k]], 0.6))
            tile = frames[f][:, j * (R + 2): j * (R + 2) + R]
            assert_pixels_close(tile, ref[0].permute(1, 2, 0).numpy())


@pytest.mark.numerics
def test_frames_do_not_depend_on_batch_size(G):
    p = make_path([3, 4], [0, 1, 2], steps=5)
    a = torch.cat([t for _, t in iter_interp_tiles(G, p, 0.5, batch_size=1)])
    b = torch.cat([t for _, t in iter_interp_tiles(G, p, 0.5, batch_size=7)])
    assert a.shape == (p.n_frames * 3, 3, 32, 32)
    assert_pixels_close(a.numpy(), b.numpy())


@pytest.mark.parametrize("ease", ["linear", "smooth"])
def test_consecutive_frames_change_gradually(G, ease):
    p = make_path([207, 1, 88], [0], steps=12, ease=ease)
    fr = [t[0].numpy() for _, t in iter_interp_tiles(G, p, 0.5)]
    for a_, b_ in [(0, 12), (12, 24)]:
        ends = _mad(fr[a_], fr[b_])
        steps_ = [_mad(fr[i], fr[i + 1]) for i in range(a_, b_)]
        assert ends > 5                                      # the classes do look different
        assert max(steps_) <= 0.35 * ends, (max(steps_), ends)
        assert min(steps_) > 0                               # and every frame moves


# ---------------------------------------------------------------------------- writers


@pytest.mark.parametrize("ext", [".gif", ".webp"])
def test_pillow_formats_decode_to_all_frames(G, tmp_path, ext):
    p = make_path([207, 1], [0], steps=6)
    info = render_interp(G, p, tmp_path / f"v{ext}", psi=0.5, fps=12)
    im = Image.open(tmp_path / f"v{ext}")
    assert im.n_frames == info.frames == 7 and im.size == (32, 32)
    assert im.info.get("loop") == 0
    if ext == ".gif":
        total = 0
        for i in range(im.n_frames):
            im.seek(i)
            total += im.info["duration"]
        assert abs(total - 7 * 1000 / 12) <= 10


def test_mp4_decodes_with_size_and_rate(G, tmp_path):
    import imageio.v2 as iio

    p = make_path([207, 1], [0, 1], steps=6)
    render_interp(G, p, tmp_path / "v.mp4", psi=0.5, fps=15)
    r = iio.get_reader(tmp_path / "v.mp4")
    meta = r.get_meta_data()
    frames = [f for f in r]
    r.close()
    assert len(frames) == 7 and frames[0].shape == (32, 66, 3)
    assert meta["fps"] == 15 and meta["codec"] == "h264" and meta["pix_fmt"].startswith("yuv420p")


@pytest.mark.parametrize("ext", [".mp4", ".gif", ".webp"])
@pytest.mark.parametrize("exc", [KeyboardInterrupt, RuntimeError])
def test_failure_leaves_nothing_behind(tmp_path, ext, exc):
    G = Interrupting(after=3, exc=exc, resolution=16)
    p = make_path([1, 2], [0], steps=10)
    with pytest.raises(exc):
        render_interp(G, p, tmp_path / f"v{ext}", psi=0.5, fps=10, frames_dir=tmp_path / "f", batch_size=2)
    assert list(tmp_path.iterdir()) == []


def test_existing_frames_folder_is_replaced_without_stale_frames(G, tmp_path):
    fdir = tmp_path / "f"
    render_interp(G, make_path([1, 2], [0], steps=5), tmp_path / "a.gif", psi=0.5, fps=10, frames_dir=fdir)
    assert len(_png_frames(fdir)) == 6
    (fdir / "notes.txt").write_text("keep me")
    render_interp(G, make_path([1, 2], [0], steps=2), tmp_path / "b.gif", psi=0.5, fps=10, frames_dir=fdir)
    assert sorted(p.name for p in fdir.iterdir()) == ["frame_00000.png", "frame_00001.png", "frame_00002.png",
                                                     "notes.txt"]


