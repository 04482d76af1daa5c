"""Frozen, serialisable architecture configs. A checkpoint's config travels with it."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class BigGANDeepConfig:
    """BigGAN-deep (DeepMind TF-Hub, Hugging Face port layout).

    Field names and meanings follow the Hugging Face ``config.json`` so the two convert
    1:1. ``layers`` holds ``(upsample, in_mult, out_mult)`` per bottleneck block;
    attention is inserted before block ``attention_layer_position``; ``n_stats`` rows of
    per-truncation batch-norm statistics cover psi = i / (n_stats - 1).
    """

    output_dim: int = 128
    z_dim: int = 128
    class_embed_dim: int = 128
    channel_width: int = 128
    num_classes: int = 1000
    layers: tuple[tuple[bool, int, int], ...] = ()
    attention_layer_position: int = 8
    eps: float = 1e-4
    n_stats: int = 51

    @property
    def resolution(self) -> int:
        return self.output_dim

    def to_hf_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["layers"] = [list(t) for t in self.layers]
        return d

    def to_hf_json(self) -> str:
        """Byte-for-byte the Hugging Face port's serialisation (indent 2, sorted keys)."""
        return json.dumps(self.to_hf_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_hf_dict(cls, d: dict[str, Any]) -> "BigGANDeepConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        kw["layers"] = tuple((bool(a), int(b), int(c)) for a, b, c in d.get("layers", ()))
        return cls(**kw)


_DEEP_128 = ((False, 16, 16), (True, 16, 16), (False, 16, 16), (True, 16, 8), (False, 8, 8),
             (True, 8, 4), (False, 4, 4), (True, 4, 2), (False, 2, 2), (True, 2, 1))
_DEEP_256 = ((False, 16, 16), (True, 16, 16), (False, 16, 16), (True, 16, 8), (False, 8, 8),
             (True, 8, 8), (False, 8, 8), (True, 8, 4), (False, 4, 4), (True, 4, 2),
             (False, 2, 2), (True, 2, 1))
_DEEP_512 = _DEEP_256 + ((False, 1, 1), (True, 1, 1))

DEEP_CONFIGS: dict[int, BigGANDeepConfig] = {
    128: BigGANDeepConfig(output_dim=128, layers=_DEEP_128, attention_layer_position=8),
    256: BigGANDeepConfig(output_dim=256, layers=_DEEP_256, attention_layer_position=8),
    512: BigGANDeepConfig(output_dim=512, layers=_DEEP_512, attention_layer_position=8),
}


@dataclass(frozen=True)
class BigGANConfig:
    """BigGAN (not deep): one parameterised generator for the author's release
    (ajbrock BigGAN-PyTorch ``G_ema.pth``), the DeepMind TF-Hub models as ported by
    ivclab, and the tutorial layout of the seed document.

    ``in_mult``/``out_mult`` are channel multipliers of ``ch`` per up-block;
    ``attn_res`` lists output resolutions after which a self-attention block follows;
    ``z_chunks`` is the number of chunks z is split into (the first feeds the linear
    layer, one per block follows); ``n_stats`` > 0 means per-truncation standing BN
    statistics (TF-Hub models), 0 a single stored set.
    """

    resolution: int = 128
    ch: int = 96
    dim_z: int = 120
    shared_dim: int = 128
    n_classes: int = 1000
    bottom_width: int = 4
    in_mult: tuple[int, ...] = (16, 16, 8, 4, 2)
    out_mult: tuple[int, ...] = (16, 8, 4, 2, 1)
    attn_res: tuple[int, ...] = (64,)
    bn_eps: float = 1e-5
    sn_eps: float = 1e-6
    shortcut: str = "always"          # "always" (released) | "when_changed" (tutorial)
    out_kernel: int = 3               # 3 (released) | 1 (tutorial)
    sn_linear: bool = True            # spectral norm on the first linear layer
    cbn_affine_bn: bool = False       # plain BN with its own affine inside cBN (tutorial)
    n_stats: int = 0                  # standing statistics rows (TF-Hub port: 50)
    extra: tuple[tuple[str, Any], ...] = field(default=())  # arch-specific knobs

    @property
    def num_blocks(self) -> int:
        return len(self.in_mult)

    @property
    def z_chunks(self) -> int:
        return self.num_blocks + 1

    @property
    def z_chunk_size(self) -> int:
        return self.dim_z // self.z_chunks
