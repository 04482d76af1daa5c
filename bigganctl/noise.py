"""Pure sampling inputs: psi checks, per-sample seeds, class plans and truncated noise
(no models, no files).

The same (seed, z_dim, psi, convention) gives bit-identical noise on every machine and
whatever the batch it belongs to: each sample draws from its own CPU generator. Seeds are
integers in [0, 2**63); every one has noise of its own (:func:`seed_uniforms`).
Noise is drawn by the inverse CDF of the truncated normal from ``z_dim`` uniforms, so a
sample's noise for different psi comes from the same uniforms (common random numbers).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .classes import resolve_classes
from .checks import check_int
from .errors import UsageError
from .parsing import MAX_SEED, parse_range
from .types import Classes

#: ``sample`` without ``--n`` / ``--seeds``: this many seeds.
DEFAULT_N = 8

#: DeepMind models (BigGAN-deep, TF-Hub BigGAN) sample psi * TruncNorm(-2, 2).
DEEPMIND_BOUND = 2.0
CONVENTIONS = {
    "deepmind": "z = psi * TruncNorm(-2, 2); psi also selects the batch-norm statistics",
    "paper": "z ~ N(0, 1) with values beyond +-psi re-drawn (TruncNorm(-psi, psi))",
}


def check_psi(psi: Any, convention: str, *, option: str = "psi") -> float:
    """THE psi check: a finite number > 0; DeepMind models take psi in (0, 1]. Returns it
    as a float (values a rounding error above 1 become 1)."""
    try:
        psi = float(psi)
    except (TypeError, ValueError):
        raise UsageError(f"{psi!r} is not a number", param=option) from None
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown truncation convention {convention!r}")
    if not math.isfinite(psi):
        raise UsageError(f"{psi} is not a finite number", param=option)
    if psi <= 0:
        raise UsageError(f"psi must be > 0, got {psi:g}", param=option)
    if convention == "deepmind" and 1.0 < psi <= 1.0 + 1e-9:
        psi = 1.0  # float noise from grids such as np.arange(0.2, 1.1, 0.1)
    if convention == "deepmind" and psi > 1.0:
        raise UsageError(
            f"psi must be in (0, 1] for this model (DeepMind convention), got {psi:g}", param=option)
    return psi


def resolve_seeds(n: int | None = None, seed: int = 0, seeds: Sequence[int] | str | None = None) -> list[int]:
    """``seeds`` (a list or a range string like ``"0-15,20"``), or ``n`` seeds from ``seed``.

    >>> resolve_seeds(n=3, seed=5)
    [5, 6, 7]
    >>> resolve_seeds(seeds="2-3")
    [2, 3]
    """
    if seeds is not None and n is not None:
        raise UsageError("give either --n or --seeds, not both", param="seeds")
    if seeds is not None:
        out = parse_range(seeds) if isinstance(seeds, str) else [_seed_int(s, "seeds") for s in seeds]
        if not out:
            raise UsageError("no seeds given", param="seeds")
        return out
    n = DEFAULT_N if n is None else n
    n = check_int(n, "n")
    s = _seed_int(seed, "seed")
    if s + n - 1 > MAX_SEED:
        raise UsageError("seeds must stay below 2**63", param="seed")
    return list(range(s, s + n))


def _seed_int(value: Any, option: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise UsageError(f"seeds are integers in [0, 2**63), got {value!r}", param=option)
    return value


def class_plan(classes: Classes, n: int, num_classes: int, seed: int) -> tuple[torch.Tensor, Any]:
    """Labels of the ``n`` samples and how to describe them.

    - ``"balanced"``: sample ``i`` is class ``i mod C`` (equal counts when C divides n).
    - ``"random"``: ``numpy.random.default_rng(seed).integers(0, C, n)`` (a prefix of a
      longer run has the same classes).
    - a list of classes (indices, names, WordNet ids; or one comma-separated string):
      sample ``i`` is the ``(i mod len)``-th.
    """
    if isinstance(classes, str) and classes.strip().lower() == "balanced":
        return torch.arange(n, dtype=torch.long) % num_classes, "balanced"
    if isinstance(classes, str) and classes.strip().lower() == "random":
        rng = np.random.default_rng(int(seed))
        return torch.from_numpy(rng.integers(0, num_classes, size=n, dtype=np.int64)), "random"
    idx = plan_key(classes)
    bad = [i for i in idx if not 0 <= i < num_classes]
    if bad:
        raise UsageError(f"class {bad[0]} out of range for a {num_classes}-class model", param="classes")
    plan = torch.tensor(idx, dtype=torch.long)
    return plan.repeat(math.ceil(n / len(idx)))[:n], idx


def plan_key(classes: Classes) -> Any:
    """What identifies a class plan without a model: ``balanced`` | ``random`` | the
    resolved class indices (UsageError naming ``--classes`` for unknown classes)."""
    if isinstance(classes, str) and classes.strip().lower() in ("balanced", "random"):
        return classes.strip().lower()
    return [c.index for c in resolve_classes(classes, option="classes")]


#: The class plans ``sample --classes`` shares with ``eval`` and ``sweep``.
EVAL_PLANS = ("balanced", "random")


@dataclass(frozen=True)
class Plan:
    """Which image ``i`` is: class ``labels[i]``, noise seed ``seeds[i]``.

    ``kind``: ``grid`` (classes x seeds, class-major, rows share their noise) or an
    evaluation plan, ``balanced`` | ``random`` (sample ``i`` has seed ``seed + i`` and the
    ``i``-th class of :func:`class_plan`: the samples ``eval`` measures)."""

    kind: str
    labels: torch.Tensor
    seeds: list[int]
    seed: int | None = None

    @property
    def n(self) -> int:
        return len(self.seeds)

    def describe(self, num_classes: int) -> dict[str, Any]:
        if self.kind == "grid":
            return {"kind": "grid", "rule": "class-major: image i has classes[i // len(seeds)], seeds[i % len(seeds)]"}
        rule = (f"image i: seed {self.seed}+i, class i mod {num_classes}" if self.kind == "balanced" else
                f"image i: seed {self.seed}+i, class numpy.random.default_rng({self.seed}).integers(0, "
                f"{num_classes}, n)[i]")
        return {"kind": self.kind, "classes": self.kind, "seed": self.seed, "n": self.n, "rule": rule}


def grid_plan(classes: Sequence[int], seeds: Sequence[int]) -> Plan:
    """``len(classes) x len(seeds)`` images, class-major."""
    labels = torch.tensor([c for c in classes for _ in seeds], dtype=torch.long)
    return Plan("grid", labels, [s for _ in classes for s in seeds])


def eval_plan(kind: str, n: int, seed: int, num_classes: int) -> Plan:
    """``n`` samples as ``eval --classes KIND --seed SEED --n N`` generates them."""
    kind = kind.strip().lower()
    if kind not in EVAL_PLANS:
        raise UsageError(f"unknown plan {kind!r} (balanced, random)", param="classes")
    if int(seed) + n - 1 > MAX_SEED:
        raise UsageError("seeds must stay below 2**63", param="seed")
    labels, _ = class_plan(kind, n, num_classes, seed)
    return Plan(kind, labels, list(range(int(seed), int(seed) + n)), int(seed))


def _truncnorm_icdf(u: torch.Tensor, bound: float) -> torch.Tensor:
    """Map uniforms in [0, 1) to TruncNorm(-bound, bound) by the inverse CDF (float64)."""
    if math.isinf(bound):
        lo, hi = 0.0, 1.0
    else:
        lo = float(torch.special.ndtr(torch.tensor(-bound, dtype=torch.float64)))
        hi = 1.0 - lo
    p = lo + u * (hi - lo)
    p = p.clamp(min=torch.finfo(torch.float64).tiny, max=1.0 - torch.finfo(torch.float64).eps)
    x = torch.special.ndtri(p)
    return x.clamp(-bound, bound) if not math.isinf(bound) else x


#: Seeds below this seed torch's CPU generator (a Mersenne Twister, which keeps only the
#: low 32 bits of its seed) directly; larger ones get a stream of the whole seed.
TORCH_SEED_LIMIT = 2 ** 32


def seed_uniforms(seed: int, n: int) -> torch.Tensor:
    """``n`` float64 uniforms from a generator seeded with ``seed`` alone.

    ``seed < 2**32``: torch's CPU generator seeded with it (the noise bigganctl has always
    drawn). Larger seeds (up to 2**63): numpy's PCG64 seeded with all bits of ``seed``, so
    ``2**32 + k`` never repeats the noise of ``k``.
    """
    seed = int(seed)
    if seed >= TORCH_SEED_LIMIT:
        return torch.from_numpy(np.random.Generator(np.random.PCG64(seed)).random(n))
    g = torch.Generator(device="cpu")
    g.manual_seed(seed)
    return torch.rand(n, generator=g, dtype=torch.float64)


def truncated_noise(seeds: Sequence[int], z_dim: int, psi: float = 1.0,
                    convention: str = "deepmind") -> torch.Tensor:
    """Per-sample truncated noise, float32 [len(seeds), z_dim] on the CPU.

    - ``"deepmind"``: ``psi * TruncNorm(-2, 2)`` (BigGAN-deep, TF-Hub BigGAN).
    - ``"paper"``: ``TruncNorm(-psi, psi)``, the paper's re-draw beyond the threshold.

    >>> truncated_noise([0, 1], z_dim=4, psi=0.5).shape
    torch.Size([2, 4])
    """
    psi = float(psi)
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown truncation convention {convention!r}")
    if not psi > 0:
        raise ValueError(f"psi must be > 0, got {psi}")
    if len(seeds) == 0:
        return torch.empty(0, z_dim)
    u = torch.stack([seed_uniforms(s, z_dim) for s in seeds])
    if convention == "deepmind":
        z = psi * _truncnorm_icdf(u, DEEPMIND_BOUND)
    else:
        z = _truncnorm_icdf(u, psi)
    return z.to(torch.float32)
