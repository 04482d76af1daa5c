"""Interpolation paths through waypoint classes (pure: numbers in, tensors out).

A path visits waypoints in order. Each waypoint is a class and, per video column, a seed.
The class condition moves linearly between one-hot class vectors (BigGAN-deep embeds
that vector with a linear layer; BigGAN's shared embedding is linear in it too, so a
soft vector is the interpolation of the embeddings); z is either held fixed per column
(``z_mode="fixed"``) or moves by spherical interpolation between the waypoints' seeds
(``"slerp"``).

Frame count (the documented choice): each segment, waypoint k -> k+1, contributes
``steps`` frames at t = 0, 1/steps, ..., (steps-1)/steps, so a segment starts exactly on
its waypoint. Without ``loop`` one closing frame sits on the last waypoint::

    frames = (K - 1) * steps + 1        # 2 classes, --steps 12 -> 13 frames

With ``loop`` a return segment K -> 1 is added and the closing frame is left out, since
the video starts over on it (seamless repeat)::

    frames = K * steps                  # 2 classes, --steps 12, --loop -> 24 frames

Frame ``k * steps`` is waypoint k exactly: its class vector is one-hot and its noise is
``truncated_noise([seed], ...)`` bit for bit, so it equals ``bigganctl sample`` for that
class, seed and psi.

>>> p = make_path([207, 1], [0], steps=12)
>>> p.n_frames, p.waypoint_frames()
(13, [0, 12])
>>> make_path([207, 1], [0], steps=12, loop=True).n_frames
24
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from collections.abc import Callable, Sequence

import torch

from .errors import UsageError
from .parsing import MAX_SEED
from .noise import DEEPMIND_BOUND, truncated_noise

MAX_STEPS = 10_000
MAX_FPS = 240.0


def _linear(t: float) -> float:
    return t


def _smooth(t: float) -> float:
    """Smoothstep 3t^2 - 2t^3: zero slope at both ends, so motion eases in and out."""
    return t * t * (3.0 - 2.0 * t)


#: Easing within a segment: t in [0, 1] -> interpolation weight in [0, 1]; 0 -> 0, 1 -> 1.
EASES: dict[str, Callable[[float], float]] = {"linear": _linear, "smooth": _smooth}

#: How z moves along the path.
Z_MODES = {
    "fixed": "one z per column (its seed) for the whole video; only the class moves",
    "slerp": "each waypoint k has its own z (column seed + k); spherical interpolation between them",
}


@dataclass(frozen=True)
class InterpPath:
    """Waypoints and timing. ``seeds[j][k]`` is column j's seed at waypoint k."""

    classes: tuple[int, ...]
    seeds: tuple[tuple[int, ...], ...]
    steps: int
    ease: str = "linear"
    loop: bool = False
    z_mode: str = "fixed"

    @property
    def n_waypoints(self) -> int:
        return len(self.classes)

    @property
    def n_columns(self) -> int:
        return len(self.seeds)

    @property
    def n_segments(self) -> int:
        return self.n_waypoints if self.loop else self.n_waypoints - 1

    @property
    def n_frames(self) -> int:
        return self.n_segments * self.steps + (0 if self.loop else 1)

    def position(self, frame: int) -> tuple[int, int, float]:
        """Frame -> (waypoint from, waypoint to, eased weight of ``to`` in [0, 1))."""
        if not 0 <= frame < self.n_frames:
            raise IndexError(f"frame {frame} outside 0..{self.n_frames - 1}")
        seg, i = divmod(frame, self.steps)
        if seg == self.n_segments:          # the closing frame (no loop)
            k = self.n_waypoints - 1
            return k, k, 0.0
        w = EASES[self.ease](i / self.steps)
        return seg, (seg + 1) % self.n_waypoints, w

    def waypoint_frames(self) -> list[int]:
        """Index of the frame sitting exactly on each waypoint, in waypoint order."""
        return [k * self.steps for k in range(self.n_waypoints)]

    def nearest_waypoint(self, frame: int) -> int:
        """The waypoint a frame is closest to in time (for captions)."""
        a, b, _ = self.position(frame)
        i = frame % self.steps
        return b if i * 2 >= self.steps and a != b else a


def make_path(classes: Sequence[int], seeds: Sequence[int], *, steps: int,
              ease: str = "linear", z_mode: str = "fixed", loop: bool = False) -> InterpPath:
    """Validate the options and lay out the waypoints.

    - Two or more classes: the waypoints are the classes in order; each seed is a column
      of the (grid) video. ``fixed``: the column's z is its seed throughout; ``slerp``:
      waypoint k of the column with seed S uses seed S + k.
    - One class, ``slerp``, two or more seeds: a walk through the seeds (one column,
      waypoint k uses ``seeds[k]``) at that class.

    Raises UsageError naming the option.
    """
    classes = [int(c) for c in classes]
    seeds = [int(s) for s in seeds]
    if ease not in EASES:
        raise UsageError(f"unknown easing {ease!r} (choose from {', '.join(EASES)})", param="ease")
    if z_mode not in Z_MODES:
        raise UsageError(f"unknown z mode {z_mode!r} (choose from {', '.join(Z_MODES)})", param="z")
    if isinstance(steps, bool) or not isinstance(steps, int) or not 2 <= steps <= MAX_STEPS:
        raise UsageError(f"must be an integer in 2..{MAX_STEPS} (frames per segment), got {steps}",
                         param="steps")
    if not seeds:
        raise UsageError("no seeds given", param="seeds")
    if any(s < 0 or s > MAX_SEED for s in seeds):
        raise UsageError("seeds must be in 0..2**63-1", param="seeds")
    if not classes:
        raise UsageError("give at least two classes (--class A --class B)", param="classes")
    if len(classes) == 1:
        if z_mode != "slerp" or len(seeds) < 2:
            raise UsageError(
                "one class makes a still video; give two or more (--class A --class B), "
                "or walk through seeds at one class with --z slerp --seeds 0-3", param="classes")
        return InterpPath((classes[0],) * len(seeds), (tuple(seeds),), steps, ease, loop, z_mode)
    k = len(classes)
    if z_mode == "slerp":
        if max(seeds) + k - 1 > MAX_SEED:
            raise UsageError("seed + waypoint index exceeds 2**63-1", param="seeds")
        cols = tuple(tuple(s + i for i in range(k)) for s in seeds)
    else:
        cols = tuple((s,) * k for s in seeds)
    return InterpPath(tuple(classes), cols, steps, ease, loop, z_mode)


def check_fps(fps: float, *, option: str = "fps") -> float:
    """Frames per second: finite, > 0, at most ``MAX_FPS``."""
    fps = float(fps)
    if not math.isfinite(fps) or fps <= 0 or fps > MAX_FPS:
        raise UsageError(f"must be a number in (0, {MAX_FPS:g}], got {fps:g}", param=option)
    return fps


def slerp(a: torch.Tensor, b: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of rows ``a`` -> ``b`` [n, d] with weights ``w`` [n] (float64).

    The angle is taken between the directions, the formula applied to the vectors
    themselves (so norms blend smoothly too). Nearly parallel rows fall back to linear
    interpolation. Rows with w == 0 or w == 1 return ``a`` or ``b`` exactly.
    """
    a64, b64, w64 = a.double(), b.double(), w.double().reshape(-1, 1)
    cos = torch.nn.functional.cosine_similarity(a64, b64, dim=1, eps=1e-12).clamp(-1.0, 1.0)
    omega = torch.acos(cos).reshape(-1, 1)
    so = torch.sin(omega)
    tiny = so < 1e-6
    safe = torch.where(tiny, torch.ones_like(so), so)
    ca = torch.where(tiny, 1.0 - w64, torch.sin((1.0 - w64) * omega) / safe)
    cb = torch.where(tiny, w64, torch.sin(w64 * omega) / safe)
    out = ca * a64 + cb * b64
    out = torch.where(w64 == 0, a64, out)
    return torch.where(w64 == 1, b64, out)


def noise_bound(psi: float, convention: str) -> float:
    """Largest |z| value the convention produces (slerp results are clamped to it)."""
    return DEEPMIND_BOUND * psi if convention == "deepmind" else float(psi)


def waypoint_noise(path: InterpPath, z_dim: int, psi: float, convention: str) -> torch.Tensor:
    """float32 [columns, waypoints, z_dim]: ``truncated_noise`` of each waypoint's seed."""
    flat = [s for col in path.seeds for s in col]
    uniq = sorted(set(flat))
    z = truncated_noise(uniq, z_dim, psi, convention)
    row = {s: i for i, s in enumerate(uniq)}
    idx = torch.tensor([row[s] for s in flat], dtype=torch.long)
    return z[idx].reshape(path.n_columns, path.n_waypoints, z_dim)


def frame_conditions(path: InterpPath, lo: int, hi: int, *, num_classes: int,
                     noise: torch.Tensor, psi: float, convention: str
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs for frames ``lo..hi-1``, frame-major then column: ``(y, z)`` with
    y float32 [(hi-lo) * columns, num_classes] and z float32 [(hi-lo) * columns, z_dim].

    ``noise`` comes from :func:`waypoint_noise`. Waypoint frames get exact one-hot rows
    and exactly their seed's noise.
    """
    if any(c < 0 or c >= num_classes for c in path.classes):
        raise ValueError(f"class index outside 0..{num_classes - 1}")
    pos = [path.position(f) for f in range(lo, hi)]
    m = path.n_columns
    src = torch.tensor([a for a, _, _ in pos], dtype=torch.long)
    dst = torch.tensor([b for _, b, _ in pos], dtype=torch.long)
    w = torch.tensor([w for _, _, w in pos], dtype=torch.float64)

    cls = torch.tensor(path.classes, dtype=torch.long)
    y = torch.zeros(len(pos), num_classes, dtype=torch.float64)
    y[torch.arange(len(pos)), cls[src]] += 1.0 - w
    y[torch.arange(len(pos)), cls[dst]] += w
    y = y.to(torch.float32).repeat_interleave(m, dim=0)

    za = noise[:, src].transpose(0, 1).reshape(len(pos) * m, -1)   # [frames*cols, d]
    zb = noise[:, dst].transpose(0, 1).reshape(len(pos) * m, -1)
    if path.z_mode == "slerp":
        wr = w.repeat_interleave(m)
        bound = noise_bound(psi, convention)
        z = slerp(za, zb, wr).clamp(-bound, bound).to(torch.float32)
        z = torch.where((wr == 0).reshape(-1, 1), za, z)          # keep waypoints bit-exact
    else:
        z = za.clone()
    return y, z


def waypoint_captions(path: InterpPath, names: Sequence[str]) -> list[str]:
    """One caption per waypoint: the class name (plus the seed when z moves in a single column)."""
    if path.z_mode == "slerp" and path.n_columns == 1:
        return [f"{names[k]}  seed {path.seeds[0][k]}" for k in range(path.n_waypoints)]
    return [names[k] for k in range(path.n_waypoints)]
