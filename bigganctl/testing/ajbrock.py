"""Writers of the author's ``G_ema.pth`` layout (:mod:`bigganctl.weights.formats.ajbrock`) with
sane random weights, for tests and benchmarks."""

from __future__ import annotations

from pathlib import Path

import torch

from ..weights.formats import _biggan as B
from ..weights.formats.ajbrock import check_config, file_config, key_prefix
from ..models.config import AUTHOR_CONFIG_128, BigGANConfig
from ..models.random_init import sn_estimate
from ._biggan import random_internal_state, random_scale, save


def from_internal(sd: B.StateDict, cfg: BigGANConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    """The internal layout -> a ``G_ema.pth`` state dict: raw weights at a random scale,
    ``u0`` the converged left singular vector (:func:`~bigganctl.models.random_init.sn_estimate`),
    ``sv0`` the sigma it gives."""
    check_config(cfg)
    g = torch.Generator(device="cpu").manual_seed(int(seed) + 7919)
    out: dict[str, torch.Tensor] = {}

    def sn(p: str, w: torch.Tensor, bias: torch.Tensor | None = None) -> None:
        raw = (w * random_scale(g)).float()
        u0, _, _, sigma = sn_estimate(raw.reshape(raw.shape[0], -1))
        out[f"{p}.weight"] = raw
        if bias is not None:
            out[f"{p}.bias"] = bias.float()
        out[f"{p}.u0"] = u0.float()[None]
        out[f"{p}.sv0"] = torch.tensor([sigma], dtype=torch.float32)

    for part in B.layout(cfg):
        p, q = key_prefix(part), part.internal
        if part.kind == "embed":
            out[f"{p}.weight"] = sd[f"{q}.weight"].float()
        elif part.kind in ("linear", "conv", "out_conv"):
            sn(p, sd[f"{q}.weight"], sd[f"{q}.bias"])
        elif part.kind == "cbn":
            out[f"{p}.stored_mean"] = sd[f"{q}.mean"][0].float()
            out[f"{p}.stored_var"] = sd[f"{q}.var"][0].float()
            sn(f"{p}.gain", sd[f"{q}.scale"])
            sn(f"{p}.bias", sd[f"{q}.shift"])
        elif part.kind == "attn":
            out[f"{p}.gamma"] = sd[f"{q}.gamma"].float().reshape(())
            for name in ("theta", "phi", "g", "o"):
                sn(f"{p}.{name}", sd[f"{q}.{name}.weight"])
        elif part.kind == "out_bn":
            out[f"{p}.gain"] = sd[f"{q}.weight"].float()
            out[f"{p}.bias"] = sd[f"{q}.bias"].float()
            out[f"{p}.stored_mean"] = sd[f"{q}.mean"][0].float()
            out[f"{p}.stored_var"] = sd[f"{q}.var"][0].float()
    return out


def write_random_checkpoint(path: str | Path, cfg: BigGANConfig = AUTHOR_CONFIG_128,
                            seed: int = 0) -> Path:
    """Write a sane random ``G_ema.pth`` for ``cfg`` (plain state dict, torch.save)."""
    check_config(cfg)
    return save(path, from_internal(random_internal_state(file_config(cfg), seed), cfg, seed))
