"""A tiny test-only generator (a few conv layers) with the bigganctl Generator interface."""

from __future__ import annotations

import torch
from torch import nn

from bigganctl.models.base import Generator


class TinyGenerator(Generator):
    """z [B, 16] + one-hot class -> [B, 3, 16, 16] in [-1, 1]; deterministic weights."""

    def __init__(self, truncation: str = "deepmind", resolution: int = 16, seed: int = 0):
        super().__init__()
        self.z_dim, self.num_classes, self.resolution, self.truncation = 16, 1000, resolution, truncation
        g = torch.Generator().manual_seed(seed)
        self.embed = nn.Linear(1000, 16, bias=False)
        self.fc = nn.Linear(32, 8 * 4 * 4)
        self.convs = nn.ModuleList(nn.Conv2d(8, 8, 3, padding=1) for _ in range(resolution.bit_length() - 3))
        self.out = nn.Conv2d(8, 3, 3, padding=1)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * (1.5 / max(1, p[0].numel()) ** 0.5))
        self.eval().requires_grad_(False)

    def synthesize(self, z, y, psi):
        h = self.fc(torch.cat([z, self.embed(y) * (1.0 + psi)], dim=1)).view(-1, 8, 4, 4)
        for conv in self.convs:
            h = torch.relu(conv(nn.functional.interpolate(h, scale_factor=2.0)))
        return torch.tanh(2.0 * self.out(h))
