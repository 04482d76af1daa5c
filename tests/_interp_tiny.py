"""Test-only helpers for the interp tests: a tiny deterministic Generator and a stand-in
``bigganctl.loader`` for the CLI tests while the real loader is not on this branch."""

from __future__ import annotations

import sys
import types

import torch
from torch import nn

from bigganctl.models.base import Generator


class TinyGenerator(Generator):
    """A few layers, continuous in z and in the (soft) class vector; psi scales the
    class modulation so truncation changes the pixels too."""

    def __init__(self, resolution: int = 32, z_dim: int = 16, num_classes: int = 1000,
                 truncation: str = "deepmind", seed: int = 0):
        super().__init__()
        self.z_dim, self.num_classes, self.resolution, self.truncation = z_dim, num_classes, resolution, truncation
        g = torch.Generator().manual_seed(seed)
        self.embed = nn.Parameter(torch.randn(num_classes, 16, generator=g))
        self.fc = nn.Linear(z_dim + 16, 16 * 4 * 4)
        self.convs = nn.ModuleList()
        r, c = 4, 16
        while r < resolution:
            self.convs.append(nn.Conv2d(c, 8, 3, padding=1))
            r, c = r * 2, 8
        self.to_rgb = nn.Conv2d(c, 3, 3, padding=1)
        with torch.no_grad():
            for p in [*self.fc.parameters(), *self.convs.parameters(), *self.to_rgb.parameters()]:
                p.copy_(torch.randn(p.shape, generator=g) * (1.0 / max(1, p[0].numel()) ** 0.5 if p.dim() > 1 else 0.1))
        self.eval().requires_grad_(False)

    def synthesize(self, z, y, psi):
        e = (y @ self.embed) * (0.5 + psi)
        h = torch.tanh(self.fc(torch.cat([z, e], 1))).view(-1, 16, 4, 4)
        for conv in self.convs:
            h = torch.relu(conv(nn.functional.interpolate(h, scale_factor=2.0))) + 0.1
        return torch.tanh(2.0 * self.to_rgb(h))


def fake_loader_module(cls=None, **kw) -> types.ModuleType:
    """A ``bigganctl.loader`` stand-in: ``load_generator`` returns a TinyGenerator."""
    from bigganctl.registry import REGISTRY

    mod = types.ModuleType("bigganctl.loader")

    def load_generator(name, weights=None, device="auto", dtype="fp32"):
        G = (cls or TinyGenerator)(**kw)
        G.spec = REGISTRY.get(name)
        G.weights_info = {"source": "random", "sha256": "random"}
        return G

    mod.load_generator = load_generator
    return mod


def install_fake_loader(monkeypatch, cls=None, **kw) -> None:
    import bigganctl

    mod = fake_loader_module(cls, **kw)
    monkeypatch.setitem(sys.modules, "bigganctl.loader", mod)
    monkeypatch.setattr(bigganctl, "loader", mod, raising=False)


def assert_pixels_close(a, b, *, frac: float = 1e-4) -> None:
    """The sample issue's tolerance: values at most one level apart, in at most ``frac``
    of values (at least one value may differ, so tiny test images are not held to less
    than one value)."""
    import numpy as np

    a = np.asarray(a, dtype=np.int16)
    b = np.asarray(b, dtype=np.int16)
    assert a.shape == b.shape, (a.shape, b.shape)
    d = np.abs(a - b)
    n_diff = int((d > 0).sum())
    assert int(d.max(initial=0)) <= 1, f"max difference {int(d.max())} levels"
    assert n_diff <= max(1, int(frac * d.size)), f"{n_diff} of {d.size} values differ"


class Interrupting(TinyGenerator):
    """Raises ``exc`` on the ``after``-th forward call (to test cleanup)."""

    def __init__(self, after: int = 2, exc: type[BaseException] = KeyboardInterrupt, **kw):
        super().__init__(**kw)
        self.calls, self.after, self.exc = 0, after, exc

    def synthesize(self, z, y, psi):
        self.calls += 1
        if self.calls >= self.after:
            raise self.exc()
        return super().synthesize(z, y, psi)
