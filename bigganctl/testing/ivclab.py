"""Writers of ivclab's ``biggan*-release.pt`` layout (:mod:`bigganctl.weights.formats.ivclab`)
with sane random weights, for tests and benchmarks."""

from __future__ import annotations

from pathlib import Path

import torch

from ..weights.formats import _biggan as B
from ..weights.formats.ivclab import ATTN_KEYS, check_config, key_prefix, sn_matrix
from ..models.config import TFHUB_CONFIGS, BigGANConfig
from ..models.random_init import sn_estimate
from ._biggan import random_internal_state, random_scale, save


def _rows_to_ivclab(w: torch.Tensor, cfg: BigGANConfig) -> torch.Tensor:
    hw = cfg.bottom_width ** 2
    return w.reshape(-1, hw, *w.shape[1:]).transpose(0, 1).reshape(w.shape)


def _cols_to_ivclab(w: torch.Tensor, cfg: BigGANConfig) -> torch.Tensor:
    k = cfg.shared_dim
    return torch.cat([w[:, k:], w[:, :k]], dim=1)


def from_internal(sd: B.StateDict, cfg: BigGANConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    """The internal layout -> a ``biggan*-release.pt`` state dict: raw weights at a random
    scale with converged (u, v) in ivclab's flattening."""
    check_config(cfg)
    g = torch.Generator(device="cpu").manual_seed(int(seed) + 7919)
    out: dict[str, torch.Tensor] = {}

    def sn(p: str, w: torch.Tensor, bias: torch.Tensor | None = None) -> None:
        raw = (w * random_scale(g)).float()
        _, u, v, _ = sn_estimate(sn_matrix(raw))
        if bias is not None:
            out[f"{p}.bias"] = bias.float()
        out.update({f"{p}.weight_orig": raw, f"{p}.weight_u": u.float(), f"{p}.weight_v": v.float()})

    def bn_stats(p: str, mean: torch.Tensor, var: torch.Tensor) -> None:
        out.update({f"{p}.running_mean": mean[-1].float().clone(), f"{p}.running_var": var[-1].float().clone(),
                    f"{p}.num_batches_tracked": torch.tensor(0, dtype=torch.long),
                    f"{p}.standing_means": mean.float(), f"{p}.standing_vars": var.float()})

    for part in B.layout(cfg):
        p, q = key_prefix(part), part.internal
        if part.kind == "embed":
            out[f"{p}.weight"] = sd[f"{q}.weight"].float()
        elif part.kind == "linear":
            sn(p, _rows_to_ivclab(sd[f"{q}.weight"], cfg).contiguous(),
               _rows_to_ivclab(sd[f"{q}.bias"], cfg).contiguous())
        elif part.kind in ("conv", "out_conv"):
            sn(p, sd[f"{q}.weight"], sd[f"{q}.bias"])
        elif part.kind == "cbn":
            bn_stats(f"{p}.crossreplicabn", sd[f"{q}.mean"], sd[f"{q}.var"])
            sn(f"{p}.gamma", _cols_to_ivclab(sd[f"{q}.scale"], cfg))
            sn(f"{p}.beta", _cols_to_ivclab(sd[f"{q}.shift"], cfg))
        elif part.kind == "attn":
            out[f"{p}.gamma"] = sd[f"{q}.gamma"].float().reshape(1)
            for name, theirs in ATTN_KEYS.items():
                sn(f"{p}.{theirs}", sd[f"{q}.{name}.weight"])
        elif part.kind == "out_bn":
            out[f"{p}.weight"] = sd[f"{q}.weight"].float()
            out[f"{p}.bias"] = sd[f"{q}.bias"].float()
            bn_stats(p, sd[f"{q}.mean"], sd[f"{q}.var"])
    return out


def write_random_checkpoint(path: str | Path, cfg: BigGANConfig = TFHUB_CONFIGS[128],
                            seed: int = 0) -> Path:
    """Write a sane random ``biggan*-release.pt`` for ``cfg`` (plain state dict, torch.save)."""
    check_config(cfg)
    return save(path, from_internal(random_internal_state(cfg, seed), cfg, seed))
