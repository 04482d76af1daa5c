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
    def from_hf_dict(cls, d: dict[str, Any]) -> BigGANDeepConfig:
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
    ivclab, and the tutorial layout of the seed document (Coursera C2W3 keys).

    Structure (all three layouts): z is split into ``num_blocks + 1`` equal chunks; the
    first goes through a linear layer to ``ch * in_mult[0]`` channels at
    ``bottom_width`` x ``bottom_width``; up-block ``i`` is conditioned on
    ``[shared(class), z_chunk[i + 1]]`` (class embedding first); each block is
    cBN-ReLU-up(nearest 2x)-conv(3x3)-cBN-ReLU-conv(3x3) plus a shortcut (nearest 2x, then
    a 1x1 conv ``always`` or only ``when_changed`` channels); a self-attention block
    follows every block whose output resolution is in ``attn_res``; then BN-ReLU-conv
    (``out_kernel``) to RGB and tanh.

    cBN: ``x_hat = (x - mean) / sqrt(var + bn_eps)``, then
    ``(1 + scale(c)) * x_hat + shift(c)`` with bias-free linear maps of the condition c;
    with ``cbn_affine_bn`` (tutorial: a full ``nn.BatchNorm2d`` inside cBN) it is
    ``(1 + scale(c)) * (weight * x_hat + bias) + shift(c)``.

    Statistics: ``n_stats == 0`` means one stored set per BN (truncation convention
    "paper"); ``n_stats > 0`` means per-truncation standing statistics, row ``i`` holding
    the statistics for ``psi = (i + 1) / n_stats`` (ivclab's TF-Hub port: 50 rows,
    psi = 0.02 ... 1.00; truncation convention "deepmind").

    ``out_bn_eps`` (None: ``bn_eps``) exists because ajbrock's code builds its output BN with
    the default eps 1e-5 whatever ``BN_eps`` says.

    ``sn_eps`` and ``sn_linear`` describe the spectral norm of the checkpoint formats; the
    model itself holds plain, folded weights.
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
    shortcut: str = "always"          # "always" (released, TF-Hub) | "when_changed" (tutorial)
    out_kernel: int = 3               # 3 (released, TF-Hub) | 1 (tutorial)
    sn_linear: bool = True            # spectral norm on the first linear layer (not tutorial)
    cbn_affine_bn: bool = False       # nn.BatchNorm2d with its own affine inside cBN (tutorial)
    n_stats: int = 0                  # standing statistics rows (TF-Hub port: 50)
    out_bn_eps: float | None = None   # eps of the output BN when it differs from bn_eps
    extra: tuple[tuple[str, Any], ...] = field(default=())  # arch-specific knobs

    def __post_init__(self) -> None:
        # Normalise sequences (JSON gives lists) so configs compare and hash equal.
        for name in ("in_mult", "out_mult", "attn_res"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        problems = []
        if len(self.in_mult) != len(self.out_mult) or not self.in_mult:
            problems.append("in_mult and out_mult must be non-empty and of equal length")
        elif any(a != b for a, b in zip(self.in_mult[1:], self.out_mult[:-1])):
            problems.append("in_mult[i + 1] must equal out_mult[i]")
        if self.in_mult and self.resolution != self.bottom_width * 2 ** self.num_blocks:
            problems.append(f"resolution {self.resolution} != bottom_width {self.bottom_width} "
                            f"* 2**{self.num_blocks}")
        if self.in_mult and self.dim_z % self.z_chunks:
            problems.append(f"dim_z {self.dim_z} is not divisible into {self.z_chunks} chunks")
        bad_attn = [r for r in self.attn_res if r not in self.block_resolutions]
        if bad_attn:
            problems.append(f"attn_res {bad_attn} not among block output resolutions "
                            f"{self.block_resolutions}")
        if self.shortcut not in ("always", "when_changed"):
            problems.append(f"shortcut must be 'always' or 'when_changed', not {self.shortcut!r}")
        if self.out_kernel not in (1, 3):
            problems.append(f"out_kernel must be 1 or 3, not {self.out_kernel}")
        if self.n_stats < 0:
            problems.append("n_stats must be >= 0")
        if any(self.ch * m % 8 for r, m in zip(self.block_resolutions, self.out_mult)
               if r in self.attn_res):
            problems.append("attention needs channel counts divisible by 8")
        if problems:
            raise ValueError("invalid BigGANConfig: " + "; ".join(problems))

    # -- derived sizes ---------------------------------------------------------------
    @property
    def num_blocks(self) -> int:
        return len(self.in_mult)

    @property
    def num_classes(self) -> int:
        return self.n_classes

    @property
    def z_chunks(self) -> int:
        return self.num_blocks + 1

    @property
    def z_chunk_size(self) -> int:
        return self.dim_z // self.z_chunks

    @property
    def cond_dim(self) -> int:
        """Width of a block's condition ``[class embedding, z chunk]``."""
        return self.shared_dim + self.z_chunk_size

    @property
    def block_resolutions(self) -> tuple[int, ...]:
        """Output resolution of each up-block."""
        return tuple(self.bottom_width * 2 ** (i + 1) for i in range(self.num_blocks))

    @property
    def attn_blocks(self) -> tuple[int, ...]:
        """Indices of the blocks followed by self-attention."""
        return tuple(i for i, r in enumerate(self.block_resolutions) if r in self.attn_res)

    def block_channels(self, i: int) -> tuple[int, int]:
        return self.ch * self.in_mult[i], self.ch * self.out_mult[i]

    def has_shortcut_conv(self, i: int) -> bool:
        cin, cout = self.block_channels(i)
        return self.shortcut == "always" or cin != cout

    @property
    def output_bn_eps(self) -> float:
        return self.bn_eps if self.out_bn_eps is None else self.out_bn_eps

    @property
    def truncation(self) -> str:
        return "deepmind" if self.n_stats > 0 else "paper"

    # -- serialisation ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for name in ("in_mult", "out_mult", "attn_res"):
            d[name] = list(d[name])
        d["extra"] = [list(kv) for kv in self.extra]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BigGANConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown BigGANConfig field(s): {', '.join(unknown)}")
        kw = dict(d)
        if "extra" in kw:
            kw["extra"] = tuple(tuple(kv) for kv in kw["extra"])
        return cls(**kw)


#: The author's release (ajbrock/BigGAN-PyTorch ``BigGAN_ch96_bs256x8_138k``, ``G_ema.pth``).
AUTHOR_CONFIG_128 = BigGANConfig()

# DeepMind TF-Hub biggan-{128,256,512}/2 as ported by ivclab: z 120/140/128 in chunks of
# 20/20/16, attention at 64/128/64, SN and BN eps 1e-4, 50 standing statistics per BN.
_TFHUB_COMMON = dict(ch=96, shared_dim=128, bn_eps=1e-4, sn_eps=1e-4, shortcut="always",
                     out_kernel=3, sn_linear=True, n_stats=50)
TFHUB_CONFIGS: dict[int, BigGANConfig] = {
    128: BigGANConfig(resolution=128, dim_z=120, in_mult=(16, 16, 8, 4, 2),
                      out_mult=(16, 8, 4, 2, 1), attn_res=(64,), **_TFHUB_COMMON),
    256: BigGANConfig(resolution=256, dim_z=140, in_mult=(16, 16, 8, 8, 4, 2),
                      out_mult=(16, 8, 8, 4, 2, 1), attn_res=(128,), **_TFHUB_COMMON),
    512: BigGANConfig(resolution=512, dim_z=128, in_mult=(16, 16, 8, 8, 4, 2, 1),
                      out_mult=(16, 8, 8, 4, 2, 1, 1), attn_res=(64,), **_TFHUB_COMMON),
}

_TUTORIAL_COMMON = dict(shortcut="when_changed", out_kernel=1, sn_linear=False,
                        cbn_affine_bn=True, bn_eps=1e-5, sn_eps=1e-12)
#: The tutorial layout as published (Coursera GANs C2W3): attention after every up-block.
TUTORIAL_CONFIG_128 = BigGANConfig(attn_res=(8, 16, 32, 64, 128), **_TUTORIAL_COMMON)
#: The seed document's variant of the tutorial: one attention block, at 64x64.
TUTORIAL_SEED_CONFIG_128 = BigGANConfig(attn_res=(64,), **_TUTORIAL_COMMON)
