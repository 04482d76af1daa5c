"""The tutorial layout of the seed document (Coursera GANs C2W3 "Components of BigGAN").

Keys (Coursera, 243 entries at 128 px): ``shared_emb.weight``; ``proj_z.{weight,bias}``
(no spectral norm); ``g_blocks.{i}.0`` residual blocks with ``conv1``, ``conv2``, ``bn1``,
``bn2`` and ``conv_mixin`` (only when the channel count changes); ``g_blocks.{i}.1``
attention blocks (``gamma`` (), ``theta``, ``phi``, ``g``, ``o``); ``proj_o.0`` (BatchNorm2d)
and ``proj_o.2`` (1x1 conv to RGB). Every conv and the cBN linears
(``class_scale_transform``, ``class_shift_transform``) use ``torch.nn.utils.spectral_norm``
(``weight_orig``, ``weight_u``, ``weight_v``; in eval mode ``sigma = u . (W v)`` with the
stored vectors, folded once by :func:`bigganctl.weights.formats.checkpoint.fold_torch_sn`).

cBN is ``ClassConditionalBatchNorm2d``: a full ``nn.BatchNorm2d`` (affine, running
statistics, eps 1e-5), then ``(1 + class_scale(c)) * bn(x) + class_shift(c)``.

Nesting: the Coursera notebook nests ``[GResidualBlock, AttentionBlock]`` per resolution
(``g_blocks.{i}.0`` / ``g_blocks.{i}.1``); the seed document lists the modules flat,
attention among them (``g_blocks.4`` is its 64x64 attention, ``g_blocks.5`` the last
block). :func:`read` takes the nesting, the attention placement, the shortcut rule, the cBN
affine and the first linear's spectral norm from the file's keys; channel widths, z and
eps come from the spec.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from collections.abc import Iterator

import torch

from ...models.config import TUTORIAL_CONFIG_128, BigGANConfig
from . import _biggan as B
from .checkpoint import check_keys, fold_torch_sn, load_state_dict_file, torch_sn_keys
from ..registry import ModelSpec

FORMAT = "tutorial"
_ATTN_NAMES = {"gamma", "theta", "phi", "g", "o"}
_SUB = {"conv1": "conv1", "conv2": "conv2", "conv_sc": "conv_mixin", "bn1": "bn1", "bn2": "bn2"}


def default_nesting(cfg: BigGANConfig) -> bool:
    """Nested (Coursera) when every block has attention, else flat (seed document)."""
    return len(cfg.attn_blocks) == cfg.num_blocks


def check_config(cfg: BigGANConfig) -> None:
    B.require(cfg, FORMAT, n_stats=0)


def parts(cfg: BigGANConfig) -> Iterator[B.Part]:
    """Parts in the tutorial's registration order (conv_mixin after bn2)."""
    pending = None
    for part in B.layout(cfg):
        if part.internal.endswith(".conv_sc"):
            pending = part
            continue
        if pending is not None and part.kind != "cbn":
            yield pending
            pending = None
        yield part
    if pending is not None:
        yield pending


def key_prefix(part: B.Part, cfg: BigGANConfig, nested: bool) -> str:
    if part.kind in ("conv", "cbn", "attn"):
        i = part.block
        if nested:
            return f"g_blocks.{i}.1" if part.kind == "attn" else \
                f"g_blocks.{i}.0.{_SUB[part.internal.rsplit('.', 1)[-1]]}"
        pos = i + sum(1 for a in cfg.attn_blocks if a < i)
        if part.kind == "attn":
            return f"g_blocks.{pos + 1}"
        return f"g_blocks.{pos}.{_SUB[part.internal.rsplit('.', 1)[-1]]}"
    return {"embed": "shared_emb", "linear": "proj_z", "out_bn": "proj_o.0",
            "out_conv": "proj_o.2"}[part.kind]


def _bn_keys(p: str, c: int, affine: bool) -> dict[str, tuple[int, ...]]:
    keys = {f"{p}.weight": (c,), f"{p}.bias": (c,)} if affine else {}
    keys.update({f"{p}.running_mean": (c,), f"{p}.running_var": (c,), f"{p}.num_batches_tracked": ()})
    return keys


def expected_keys(cfg: BigGANConfig, nested: bool | None = None) -> dict[str, tuple[int, ...]]:
    """Every key of a tutorial-layout state dict for ``cfg`` with its shape, in module order."""
    check_config(cfg)
    nested = default_nesting(cfg) if nested is None else nested
    weight = B.sn_rule(torch_sn_keys, bias=True)
    linear = weight if cfg.sn_linear else (lambda p, part: {f"{p}.weight": part.shape, f"{p}.bias": part.shape[:1]})
    return B.keys_of(parts(cfg), lambda part: key_prefix(part, cfg, nested), {
        "embed": B.embed_keys, "linear": linear, "conv": weight, "out_conv": weight,
        "cbn": lambda p, part: {**_bn_keys(f"{p}.bn", part.shape[0], cfg.cbn_affine_bn),
                                **torch_sn_keys(f"{p}.class_scale_transform", part.shape, bias=False),
                                **torch_sn_keys(f"{p}.class_shift_transform", part.shape, bias=False)},
        "attn": B.attn_rule(torch_sn_keys, gamma=()),
        "out_bn": lambda p, part: _bn_keys(p, part.shape[0], affine=True),
    })


def to_internal(state: dict[str, torch.Tensor], cfg: BigGANConfig, nested: bool | None = None, *,
                what: str = FORMAT) -> B.StateDict:
    """A tutorial-layout state dict -> the internal layout (strict; SN folded)."""
    nested = default_nesting(cfg) if nested is None else nested
    check_keys(state, expected_keys(cfg, nested), what=what)
    out: B.StateDict = {}

    def sn(p: str) -> torch.Tensor:
        return B.f32(fold_torch_sn(state[f"{p}.weight_orig"], state[f"{p}.weight_u"], state[f"{p}.weight_v"]))

    def bn(p: str, q: str, affine: bool) -> None:
        if affine:
            out[f"{q}.weight"] = B.f32(state[f"{p}.weight"])
            out[f"{q}.bias"] = B.f32(state[f"{p}.bias"])
        out[f"{q}.mean"] = B.f32(state[f"{p}.running_mean"])[None]
        out[f"{q}.var"] = B.f32(state[f"{p}.running_var"])[None]

    for part in parts(cfg):
        p, q = key_prefix(part, cfg, nested), part.internal
        if part.kind == "embed":
            out[f"{q}.weight"] = B.f32(state[f"{p}.weight"])
        elif part.kind in ("linear", "conv", "out_conv"):
            plain = part.kind == "linear" and not cfg.sn_linear
            out[f"{q}.weight"] = B.f32(state[f"{p}.weight"]) if plain else sn(p)
            out[f"{q}.bias"] = B.f32(state[f"{p}.bias"])
        elif part.kind == "cbn":
            bn(f"{p}.bn", q, cfg.cbn_affine_bn)
            out[f"{q}.scale"] = sn(f"{p}.class_scale_transform")
            out[f"{q}.shift"] = sn(f"{p}.class_shift_transform")
        elif part.kind == "attn":
            out[f"{q}.gamma"] = B.f32(state[f"{p}.gamma"]).reshape(())
            for name in ("theta", "phi", "g", "o"):
                out[f"{q}.{name}.weight"] = sn(f"{p}.{name}")
        elif part.kind == "out_bn":
            bn(p, q, affine=True)
    return out


_G_BLOCKS = re.compile(r"g_blocks\.(\d+)\.(.+)$")


def infer_layout(state: dict[str, torch.Tensor], cfg: BigGANConfig) -> tuple[BigGANConfig, bool]:
    """Read the structural knobs a tutorial-layout file fixes by its keys: nesting,
    attention placement, shortcut rule, cBN affine, spectral norm on ``proj_z``. Anything
    the keys do not settle stays as in ``cfg`` (the strict key check reports the rest)."""
    subs: dict[int, set[str]] = {}
    for k in state:
        m = _G_BLOCKS.match(k)
        if m:
            subs.setdefault(int(m.group(1)), set()).add(m.group(2))
    nested = any(s.split(".", 1)[0].isdigit() for ss in subs.values() for s in ss)
    changes: dict[str, Any] = {}
    blocks: dict[int, set[str]] = {}          # block index -> its sub-keys
    attn: set[int] = set()
    if nested:
        for j, ss in subs.items():
            blocks[j] = {s[2:] for s in ss if s.startswith("0.")}
            if any(s.startswith("1.") for s in ss):
                attn.add(j)
    else:
        n = 0
        for j in sorted(subs):
            if any(s.split(".", 1)[0] in _ATTN_NAMES for s in subs[j]):
                if n:
                    attn.add(n - 1)
            else:
                blocks[n] = subs[j]
                n += 1
    if blocks and max(blocks) + 1 == cfg.num_blocks == len(blocks):
        changes["attn_res"] = tuple(cfg.block_resolutions[i] for i in sorted(attn))
        same = [i for i in blocks if cfg.block_channels(i)[0] == cfg.block_channels(i)[1]]
        if same:
            mixin = any(s.startswith("conv_mixin.") for i in same for s in blocks[i])
            changes["shortcut"] = "always" if mixin else "when_changed"
        bn_keys = [s for ss in blocks.values() for s in ss if re.match(r"bn[12]\.bn\.", s)]
        if bn_keys:
            changes["cbn_affine_bn"] = any(s.endswith(".bn.weight") for s in bn_keys)
    if "proj_z.weight_orig" in state or "proj_z.weight" in state:
        changes["sn_linear"] = "proj_z.weight_orig" in state
    return B.as_checkpoint_error(lambda: B.replace(cfg, **changes)), nested


def read(path: str | Path, spec: ModelSpec | None = None) -> tuple[BigGANConfig, B.StateDict]:
    """Read a tutorial-layout state dict strictly into the internal layout; the nesting and
    attention placement come from the file (see :func:`infer_layout`)."""
    base = B.spec_config(spec, TUTORIAL_CONFIG_128)
    check_config(base)
    state = load_state_dict_file(path)
    cfg, nested = infer_layout(state, base)
    return cfg, to_internal(state, cfg, nested, what=B.spec_label(spec, path, FORMAT))


