"""Test-only helpers for the interp tests: a stand-in ``bigganctl.weights.loader`` returning the
shared tiny generator (fast CLI tests), one that gets interrupted, and the pixel tolerance."""

from __future__ import annotations

import sys
import types

import tiny_generator
import torch


class TinyGenerator(tiny_generator.TinyGenerator):
    """The shared tiny test generator (z_dim 16, 1000 classes) with a class embedding
    strong enough that two classes look clearly different (interpolation tests)."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        with torch.no_grad():
            self.embed.weight.mul_(20.0)


def fake_loader_module(cls=None, **kw) -> types.ModuleType:
    """A ``bigganctl.weights.loader`` stand-in: ``load_generator`` returns a TinyGenerator."""
    from bigganctl.weights.registry import REGISTRY

    mod = types.ModuleType("bigganctl.weights.loader")

    def load_generator(name, weights=None, device="auto", dtype="fp32", progress=None):
        G = (cls or TinyGenerator)(**kw)
        G.spec = REGISTRY.get(name)
        G.weights_info = {"source": "random", "sha256": "random"}
        return G

    mod.load_generator = load_generator
    return mod


def install_fake_loader(monkeypatch, cls=None, **kw) -> None:
    import bigganctl

    mod = fake_loader_module(cls, **kw)
    monkeypatch.setitem(sys.modules, "bigganctl.weights.loader", mod)
    monkeypatch.setattr(bigganctl, "loader", mod, raising=False)


def assert_pixels_close(a, b, *, frac: float = 1e-4) -> None:
    """The uint8 rule: values at most one level apart, in at most ``frac``
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
