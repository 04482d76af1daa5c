"""Helpers shared by the BigGAN (not deep) format adapters: ajbrock, ivclab, tutorial.

Each adapter walks :func:`layout` - the generator's parts in the order the reference
modules register them - and maps every part between its own key names and the internal
layout of :class:`bigganctl.models.biggan.BigGAN`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, NamedTuple
from collections.abc import Callable, Iterable, Iterator, Mapping

import torch

from ...errors import CheckpointError
from ...models.config import BigGANConfig
from ..registry import ModelSpec

StateDict = dict[str, torch.Tensor]


class Part(NamedTuple):
    """One part of the generator. ``kind``: embed | linear | conv | cbn | attn | out_bn |
    out_conv; ``block``: the up-block index (or None); ``internal``: the prefix in the
    internal layout; ``shape``: the weight shape (channels for BNs)."""

    kind: str
    block: int | None
    internal: str
    shape: tuple[int, ...]


def layout(cfg: BigGANConfig) -> Iterator[Part]:
    """The parts in forward order (the order every reference registers them in)."""
    c0 = cfg.ch * cfg.in_mult[0]
    yield Part("embed", None, "shared", (cfg.n_classes, cfg.shared_dim))
    yield Part("linear", None, "linear", (c0 * cfg.bottom_width ** 2, cfg.z_chunk_size))
    for i in range(cfg.num_blocks):
        cin, cout = cfg.block_channels(i)
        b = f"blocks.{i}"
        yield Part("conv", i, f"{b}.conv1", (cout, cin, 3, 3))
        yield Part("conv", i, f"{b}.conv2", (cout, cout, 3, 3))
        if cfg.has_shortcut_conv(i):
            yield Part("conv", i, f"{b}.conv_sc", (cout, cin, 1, 1))
        yield Part("cbn", i, f"{b}.bn1", (cin, cfg.cond_dim))
        yield Part("cbn", i, f"{b}.bn2", (cout, cfg.cond_dim))
        if i in cfg.attn_blocks:
            yield Part("attn", i, f"{b}.attn", (cout,))
    cl = cfg.ch * cfg.out_mult[-1]
    yield Part("out_bn", None, "out_bn", (cl,))
    yield Part("out_conv", None, "out_conv", (3, cl, cfg.out_kernel, cfg.out_kernel))


def attn_shapes(c: int) -> dict[str, tuple[int, ...]]:
    return {"theta": (c // 8, c, 1, 1), "phi": (c // 8, c, 1, 1), "g": (c // 2, c, 1, 1),
            "o": (c, c // 2, 1, 1)}


Keys = dict[str, tuple[int, ...]]
#: ``rule(prefix, part)``: the keys (name -> shape) one part has in a format's file.
KeyRule = Callable[[str, Part], Keys]
#: ``sn_keys(prefix, shape, bias=...)``: a format's keys of one spectrally normalised weight.
SNKeys = Callable[..., Keys]


def keys_of(parts: Iterable[Part], prefix: Callable[[Part], str], rules: Mapping[str, KeyRule]) -> Keys:
    """Every key of a checkpoint with its shape, in the file's order. A format is a table of
    rules, one per part kind: ``rules[part.kind](prefix(part), part)``."""
    keys: Keys = {}
    for part in parts:
        keys.update(rules[part.kind](prefix(part), part))
    return keys


def embed_keys(p: str, part: Part) -> Keys:
    return {f"{p}.weight": part.shape}


def sn_rule(sn_keys: SNKeys, *, bias: bool) -> KeyRule:
    """The rule of a part that is one spectrally normalised weight."""
    return lambda p, part: sn_keys(p, part.shape, bias=bias)


def attn_rule(sn_keys: SNKeys, *, gamma: tuple[int, ...], names: Mapping[str, str] | None = None) -> KeyRule:
    """Self-attention: ``gamma``, then theta, phi, g, o (renamed by ``names``), each SN."""
    def rule(p: str, part: Part) -> Keys:
        keys: Keys = {f"{p}.gamma": gamma}
        for name, shape in attn_shapes(part.shape[0]).items():
            keys.update(sn_keys(f"{p}.{(names or {}).get(name, name)}", shape, bias=False))
        return keys

    return rule


def spec_config(spec: ModelSpec | None, default: BigGANConfig) -> BigGANConfig:
    """The config behind ``spec``: a ModelSpec (its ``.config``), a BigGANConfig, or None."""
    if spec is None:
        return default
    cfg = getattr(spec, "config", spec)
    if not isinstance(cfg, BigGANConfig):
        raise ValueError(f"expected a BigGAN (not deep) spec or config, got {type(cfg).__name__}")
    return cfg


def spec_label(spec: ModelSpec | None, path: str | Path, fmt: str) -> str:
    name = getattr(spec, "name", None)
    return f"{Path(path).name} ({fmt} format{', ' + name if name else ''})"


def require(cfg: BigGANConfig, fmt: str, **wanted: Any) -> None:
    """Refuse a config this format cannot express (a programming error, not user input)."""
    bad = [f"{k}={getattr(cfg, k)!r} (needs {v!r})" for k, v in wanted.items() if getattr(cfg, k) != v]
    if bad:
        raise ValueError(f"the {fmt} format cannot express this config: {', '.join(bad)}")


def f32(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to(torch.float32).contiguous()


def as_checkpoint_error(fn):
    """Run ``fn()``; a config the file implies but the architecture rejects -> CheckpointError."""
    try:
        return fn()
    except ValueError as e:
        raise CheckpointError(str(e)) from None


def replace(cfg: BigGANConfig, **kw: Any) -> BigGANConfig:
    return dataclasses.replace(cfg, **kw) if any(getattr(cfg, k) != v for k, v in kw.items()) else cfg
