"""Interpolation paths (bigganctl.paths, pure): frame counts, segment positions and eases, seed
layouts of the z modes, waypoints that are exact one-hot classes with their seed's noise,
class mixing between waypoints, slerp, captions; bad input refused naming the parameter."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bigganctl.errors import UsageError
from bigganctl.noise import truncated_noise
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
