"""Writers of the tutorial layout (:mod:`bigganctl.weights.formats.tutorial`) with sane random
weights, for tests and benchmarks."""

from __future__ import annotations

from pathlib import Path

import torch

from ..weights.formats import _biggan as B
from ..weights.formats.tutorial import check_config, default_nesting, key_prefix, parts
from ..models.config import TUTORIAL_CONFIG_128, BigGANConfig
from ..models.random_init import sn_estimate
from ._biggan import random_internal_state, random_scale, save


def from_internal(sd: B.StateDict, cfg: BigGANConfig, seed: int = 0,
                  nested: bool | None = None) -> dict[str, torch.Tensor]:
    """The internal layout -> a tutorial-layout state dict: raw weights at a random scale
    with converged (u, v), running statistics from the stored ones."""
    check_config(cfg)
    nested = default_nesting(cfg) if nested is None else nested
    g = torch.Generator(device="cpu").manual_seed(int(seed) + 7919)
    out: dict[str, torch.Tensor] = {}

    def sn(p: str, w: torch.Tensor, bias: torch.Tensor | None = None) -> None:
        raw = (w * random_scale(g)).float()
        _, u, v, _ = sn_estimate(raw.reshape(raw.shape[0], -1))
        if bias is not None:
            out[f"{p}.bias"] = bias.float()
        out.update({f"{p}.weight_orig": raw, f"{p}.weight_u": u.float(), f"{p}.weight_v": v.float()})

    def bn(p: str, q: str, affine: bool) -> None:
        if affine:
            out[f"{p}.weight"] = sd[f"{q}.weight"].float()
            out[f"{p}.bias"] = sd[f"{q}.bias"].float()
        out[f"{p}.running_mean"] = sd[f"{q}.mean"][0].float()
        out[f"{p}.running_var"] = sd[f"{q}.var"][0].float()
        out[f"{p}.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)

    for part in parts(cfg):
        p, q = key_prefix(part, cfg, nested), part.internal
        if part.kind == "embed":
            out[f"{p}.weight"] = sd[f"{q}.weight"].float()
        elif part.kind == "linear" and not cfg.sn_linear:
            out[f"{p}.weight"] = sd[f"{q}.weight"].float()
            out[f"{p}.bias"] = sd[f"{q}.bias"].float()
        elif part.kind in ("linear", "conv", "out_conv"):
            sn(p, sd[f"{q}.weight"], sd[f"{q}.bias"])
        elif part.kind == "cbn":
            bn(f"{p}.bn", q, cfg.cbn_affine_bn)
            sn(f"{p}.class_scale_transform", sd[f"{q}.scale"])
            sn(f"{p}.class_shift_transform", sd[f"{q}.shift"])
        elif part.kind == "attn":
            out[f"{p}.gamma"] = sd[f"{q}.gamma"].float().reshape(())
            for name in ("theta", "phi", "g", "o"):
                sn(f"{p}.{name}", sd[f"{q}.{name}.weight"])
        elif part.kind == "out_bn":
            bn(p, q, affine=True)
    return out


def write_random_checkpoint(path: str | Path, cfg: BigGANConfig = TUTORIAL_CONFIG_128,
                            seed: int = 0, nested: bool | None = None) -> Path:
    """Write a sane random tutorial-layout state dict for ``cfg`` (torch.save)."""
    check_config(cfg)
    return save(path, from_internal(random_internal_state(cfg, seed), cfg, seed, nested))
