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


def fake_loader_module(**kw) -> types.ModuleType:
    """A ``bigganctl.loader`` stand-in: ``load_generator`` returns a TinyGenerator."""
    from bigganctl.registry import REGISTRY

    mod = types.ModuleType("bigganctl.loader")

    def load_generator(name, weights=None, device="auto", dtype="fp32"):
        G = TinyGenerator(**kw)
        G.spec = REGISTRY.get(name)
        G.weights_info = {"source": "random", "sha256": "random"}
        return G

    mod.load_generator = load_generator
    return mod


def install_fake_loader(monkeypatch, **kw) -> None:
    import bigganctl

    mod = fake_loader_module(**kw)
    monkeypatch.setitem(sys.modules, "bigganctl.loader", mod)
    monkeypatch.setattr(bigganctl, "loader", mod, raising=False)
