"""Interpolation paths (pure) and the streaming video writers, with a tiny test generator."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch
from _interp_tiny import Interrupting, TinyGenerator, assert_pixels_close
from PIL import Image

from bigganctl.errors import RuntimeFailure, UsageError
from bigganctl.generate import iter_uint8
from bigganctl.paths import (
    EASES,
    check_fps,
    frame_conditions,
    make_path,
    noise_bound,
    slerp,
    waypoint_captions,
    waypoint_noise,
)
from bigganctl.noise import truncated_noise
from bigganctl.api.interp import render_interp
from bigganctl.generate import iter_interp_tiles
from bigganctl.media.frames import Captioner, compose_frame, write_video
from bigganctl.media.video import check_video_options, gif_delay_cs


@pytest.fixture(scope="module")
def G():
    return TinyGenerator(resolution=32)


def _png_frames(folder):
    return [np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("frame_*.png"))]


def _mad(a, b) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


# ---------------------------------------------------------------------------- paths


@pytest.mark.parametrize("classes,steps,loop,frames", [
    ([207, 1], 12, False, 13), ([207, 1], 12, True, 24),
    ([1, 2, 3], 5, False, 11), ([1, 2, 3], 5, True, 15), ([1, 2], 2, False, 3),
])
def test_frame_count_rule(classes, steps, loop, frames):
    p = make_path(classes, [0], steps=steps, loop=loop)
    assert p.n_frames == frames
    assert p.waypoint_frames() == [k * steps for k in range(len(classes))]


def test_positions_cover_segments_and_return():
    p = make_path([10, 20], [0], steps=4)
    assert [p.position(f) for f in range(p.n_frames)] == [
        (0, 1, 0.0), (0, 1, 0.25), (0, 1, 0.5), (0, 1, 0.75), (1, 1, 0.0)]
    q = make_path([10, 20], [0], steps=4, loop=True)
    assert q.position(4) == (1, 0, 0.0) and q.position(7) == (1, 0, 0.75)
    with pytest.raises(IndexError):
        q.position(8)


def test_smooth_ease_eases_in_and_out():
    s, lin = EASES["smooth"], EASES["linear"]
    assert s(0.0) == 0.0 and s(1.0) == 1.0 and s(0.5) == 0.5
    ts = np.linspace(0, 1, 101)
    vals = [s(t) for t in ts]
    assert all(b >= a for a, b in zip(vals, vals[1:]))
    assert s(0.05) < lin(0.05) / 2 and 1 - s(0.95) < (1 - lin(0.95)) / 2   # slow near waypoints
    assert all(math.isclose(s(t), 1 - s(1 - t), abs_tol=1e-12) for t in ts)


def test_z_modes_lay_out_seeds():
    assert make_path([1, 2, 3], [5, 9], steps=2).seeds == ((5, 5, 5), (9, 9, 9))
    assert make_path([1, 2, 3], [5, 9], steps=2, z_mode="slerp").seeds == ((5, 6, 7), (9, 10, 11))
    walk = make_path([207], [0, 1, 2, 3], steps=3, z_mode="slerp")
    assert walk.classes == (207,) * 4 and walk.seeds == ((0, 1, 2, 3),) and walk.n_frames == 10


@pytest.mark.parametrize("kw,option", [
    (dict(classes=[207], seeds=[0]), "classes"),
    (dict(classes=[207], seeds=[0, 1]), "classes"),                    # seeds but z fixed
    (dict(classes=[207], seeds=[0], z_mode="slerp"), "classes"),       # slerp but one seed
    (dict(classes=[], seeds=[0]), "classes"),
    (dict(classes=[1, 2], seeds=[0], steps=1), "steps"),
    (dict(classes=[1, 2], seeds=[0], steps=0), "steps"),
    (dict(classes=[1, 2], seeds=[0], steps=True), "steps"),
    (dict(classes=[1, 2], seeds=[0], ease="cubic"), "ease"),
    (dict(classes=[1, 2], seeds=[0], z_mode="lerp"), "z"),
    (dict(classes=[1, 2], seeds=[]), "seeds"),
    (dict(classes=[1, 2], seeds=[2**63 - 1], z_mode="slerp"), "seeds"),
])
def test_make_path_rejects_bad_input(kw, option):
    kw.setdefault("steps", 4)
    with pytest.raises(UsageError) as e:
        make_path(kw.pop("classes"), kw.pop("seeds"), **kw)
    assert e.value.param == option


@pytest.mark.parametrize("fps", [0, -1, float("nan"), float("inf"), 1000])
def test_check_fps_rejects(fps):
    with pytest.raises(UsageError, match="fps"):
        check_fps(fps)


# ---------------------------------------------------------------------------- conditions


@pytest.mark.parametrize("z_mode", ["fixed", "slerp"])
@pytest.mark.parametrize("convention", ["deepmind", "paper"])
def test_waypoints_are_exact_one_hot_and_seed_noise(z_mode, convention):
    p = make_path([207, 1, 88], [3, 7], steps=5, z_mode=z_mode, ease="smooth", loop=True)
    noise = waypoint_noise(p, 12, 0.5, convention)
    y, z = frame_conditions(p, 0, p.n_frames, num_classes=1000, noise=noise, psi=0.5, convention=convention)
    m = p.n_columns
    assert y.shape == (p.n_frames * m, 1000) and z.shape == (p.n_frames * m, 12)
    assert torch.allclose(y.sum(1), torch.ones(len(y)))
    for k, f in enumerate(p.waypoint_frames()):
        for j in range(m):
            row = f * m + j
            assert torch.equal(y[row], torch.nn.functional.one_hot(torch.tensor(p.classes[k]), 1000).float())
            assert torch.equal(z[row], truncated_noise([p.seeds[j][k]], 12, 0.5, convention)[0])


def test_between_waypoints_the_class_vector_mixes_two_classes():
    p = make_path([5, 9], [0], steps=4)
    y, z = frame_conditions(p, 1, 4, num_classes=10, noise=waypoint_noise(p, 8, 1.0, "deepmind"),
                            psi=1.0, convention="deepmind")
    assert torch.allclose(y[:, 9], torch.tensor([0.25, 0.5, 0.75]))
    assert torch.allclose(y[:, 5], torch.tensor([0.75, 0.5, 0.25]))
    assert torch.count_nonzero(y) == 6
    assert torch.equal(z, z[:1].expand_as(z))         # fixed z: the same row throughout


@pytest.mark.numerics
def test_chunked_conditions_equal_whole():
    p = make_path([1, 2, 3], [0, 4], steps=6, z_mode="slerp", ease="smooth")
    kw = dict(num_classes=50, noise=waypoint_noise(p, 16, 0.7, "deepmind"), psi=0.7, convention="deepmind")
    y, z = frame_conditions(p, 0, p.n_frames, **kw)
    parts = [frame_conditions(p, lo, min(lo + 5, p.n_frames), **kw) for lo in range(0, p.n_frames, 5)]
    assert torch.equal(torch.cat([a for a, _ in parts]), y)
    assert torch.equal(torch.cat([b for _, b in parts]), z)


def test_slerp_properties():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 64, generator=g), torch.randn(4, 64, generator=g)
    assert torch.equal(slerp(a, b, torch.zeros(4)).float(), a)
    assert torch.equal(slerp(a, b, torch.ones(4)).float(), b)
    # orthonormal endpoints stay on the unit circle (linear interpolation would dip to 0.707)
    e1, e2 = torch.eye(2)[:1], torch.eye(2)[1:]
    mid = slerp(e1, e2, torch.tensor([0.5]))
    assert math.isclose(float(mid.norm()), 1.0, rel_tol=1e-12)
    assert torch.allclose(mid, torch.tensor([[0.5 ** 0.5, 0.5 ** 0.5]], dtype=torch.float64))
    # parallel rows fall back to linear interpolation (no division by sin 0)
    par = slerp(a[:1], 2 * a[:1], torch.tensor([0.5]))
    assert torch.isfinite(par).all() and torch.allclose(par.float(), 1.5 * a[:1])


def test_slerp_noise_stays_inside_the_truncation_bound():
    p = make_path(list(range(8)), [0], steps=7, z_mode="slerp")
    for conv, psi in [("deepmind", 0.3), ("paper", 0.8)]:
        _, z = frame_conditions(p, 0, p.n_frames, num_classes=10, noise=waypoint_noise(p, 128, psi, conv),
                                psi=psi, convention=conv)
        assert float(z.abs().max()) <= noise_bound(psi, conv) + 1e-6


def test_nearest_waypoint_and_captions():
    p = make_path([5, 9], [0], steps=4, loop=True)
    assert [p.nearest_waypoint(f) for f in range(p.n_frames)] == [0, 0, 1, 1, 1, 1, 0, 0]
    assert waypoint_captions(p, ["a", "b"]) == ["a", "b"]
    walk = make_path([5], [3, 4], steps=2, z_mode="slerp")
    assert waypoint_captions(walk, ["cat", "cat"]) == ["cat  seed 3", "cat  seed 4"]


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


def test_compose_grid_and_caption():
    tiles = np.stack([np.full((8, 8, 3), v, np.uint8) for v in (10, 20, 30)])
    assert compose_frame(tiles[:1]).shape == (8, 8, 3)
    one_row = compose_frame(tiles)
    assert one_row.shape == (8, 3 * 8 + 2 * 2, 3)
    assert (one_row[:, 8:10] == 0).all() and (one_row[:, 10:18] == 20).all()
    two_rows = compose_frame(tiles, nrow=2)
    assert two_rows.shape == (2 * 8 + 2, 2 * 8 + 2, 3) and (two_rows[10:, :8] == 30).all()
    cap = Captioner(width=128, tile=128)
    assert cap.height % 2 == 0
    frame = cap(np.zeros((128, 128, 3), np.uint8), "golden retriever")
    assert frame.shape == (128 + cap.height, 128, 3) and frame[128:].max() == 255
    long = cap(np.zeros((128, 128, 3), np.uint8), "a very long class name " * 5)
    assert long.shape == frame.shape                       # truncated to the width


def test_gif_delays_keep_the_average_rate():
    for fps in (7, 12, 24, 30, 50):
        d = [gif_delay_cs(i, fps) for i in range(600)]
        assert min(d) >= 1 and abs(sum(d) - 600 * 100 / fps) < 1


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


def test_mp4_pads_odd_frame_sizes(tmp_path):
    import imageio.v2 as iio

    frames = (np.full((35, 33, 3), 40 * i, np.uint8) for i in range(4))
    n, w, h = write_video(frames, tmp_path / "odd.mp4", fps=8, n_frames=4)
    assert (n, w, h) == (4, 33, 35)
    decoded = [f for f in iio.get_reader(tmp_path / "odd.mp4")]   # (list() trips on len = inf)
    assert len(decoded) == 4 and decoded[0].shape == (36, 34, 3)
    assert abs(int(decoded[3][:35, :33].mean()) - 120) <= 3


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


def test_a_failing_encoder_is_a_runtime_failure_and_leaves_nothing(tmp_path, monkeypatch):
    import shutil

    from bigganctl.media import video

    monkeypatch.setattr(video, "_ffmpeg_exe", lambda: shutil.which("false") or pytest.skip("no `false`"))
    frames = (np.zeros((16, 16, 3), np.uint8) for _ in range(3))
    with pytest.raises(RuntimeFailure, match="ffmpeg"):
        write_video(frames, tmp_path / "v.mp4", fps=8, n_frames=3, frames_dir=tmp_path / "f")
    assert list(tmp_path.iterdir()) == []


def test_missing_mp4_backend_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)
    with pytest.raises(RuntimeFailure) as e:
        check_video_options("v.mp4", 12)
    assert e.value.exit_code == 1 and "imageio-ffmpeg" in (e.value.hint or "")
    check_video_options("v.gif", 12)                       # the Pillow formats still work


@pytest.mark.parametrize("out,fps,option", [("v.avi2", 12, "out"), ("v", 12, "out"),
                                            ("v.gif", 60, "fps"), ("v.mp4", 0, "fps")])
def test_check_video_options_rejects(out, fps, option):
    with pytest.raises(UsageError) as e:
        check_video_options(out, fps)
    assert e.value.param == option
