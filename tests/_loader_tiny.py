"""A tiny test-only generator, checkpoint format and model spec (``tiny-8``) for the loader
and the commands that load by name: :func:`register` puts them in the loader's tables for one
test (use it from an autouse fixture)."""

from __future__ import annotations

import types
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from bigganctl.models.base import Generator
from bigganctl.weights import loader
from bigganctl.weights.formats.checkpoint import load_state_dict_file
from bigganctl.weights.registry import REGISTRY, ModelSpec


@dataclass(frozen=True)
class TinyConfig:
    resolution: int = 8
    z_dim: int = 4
    num_classes: int = 3


class TinyGen(Generator):
    config_class = TinyConfig

    def __init__(self, config: TinyConfig):
        super().__init__()
        self.z_dim, self.num_classes, self.resolution = config.z_dim, config.num_classes, config.resolution
        self.truncation = "paper"
        self.fc = nn.Linear(config.z_dim + config.num_classes, 4 * 4 * 4)
        self.conv = nn.Conv2d(4, 3, 3, padding=1)

    def random_init_(self, seed: int) -> TinyGen:
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        return self

    def synthesize(self, z, y, psi):
        h = self.fc(torch.cat([z, y], 1)).view(-1, 4, 4, 4)
        h = nn.functional.interpolate(h, size=self.resolution)
        return torch.tanh(self.conv(h))


def _tiny_read(path, spec):
    path = Path(path)
    if path.is_dir():
        path = loader.find_weights_file(path)
    return None, load_state_dict_file(path)


TINY_FORMAT = types.SimpleNamespace(read=_tiny_read)


TINY_SPEC = ModelSpec(name="tiny-8", arch="tiny", config=TinyConfig(), format="tiny",
                      truncation="paper", description="test-only tiny generator")


def register(monkeypatch):
    """``tiny-8`` (arch and format ``tiny``) in the loader's tables, with an empty model cache."""
    monkeypatch.setitem(loader.ARCHS, "tiny", TinyGen)
    monkeypatch.setitem(loader.FORMATS, "tiny", TINY_FORMAT)
    monkeypatch.setitem(REGISTRY, "tiny-8", TINY_SPEC)
    loader.clear_cache()
