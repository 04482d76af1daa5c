"""DeepMind TF-Hub BigGAN 128/256/512 as ported by ivclab/BigGAN-Generator-Pretrained-Pytorch
(``biggan{128,256,512}-release.pt``).

Keys: ``linear.weight`` (the class embedding, (1000, 128)); ``g_z.g_linear`` (the first
linear, SN); ``gblock``, ``gblock_1``, ... with ``conv0`` / ``conv1`` / ``conv_sc`` (SN) and
``hyperbn`` / ``hyperbn_1`` (``crossreplicabn.{running_mean, running_var,
num_batches_tracked, standing_means, standing_vars}`` + SN linears ``gamma``, ``beta``);
one ``attention`` (``gamma`` (1,), ``theta``, ``phi``, ``g``, ``o_conv``);
``scaledcrossreplicabn`` (affine BN with standing statistics); ``conv_2d`` (SN, 3x3).

Semantics that differ from the internal layout, handled here:

- the condition is ``cat(z_chunk, class_embedding)`` (z first): the columns of every
  hyper-BN linear are reordered to the internal class-first order;
- the first linear's output is viewed NHWC ``(B, 4, 4, C)`` then permuted: its rows are
  reordered to the internal (C, H, W) order;
- spectral norm is torch-style (``weight_orig``, ``weight_u``, ``weight_v``; eval mode
  uses the stored vectors: ``sigma = u . (W v)``), but ivclab flattens a conv weight as
  ``weight.permute(0, 2, 3, 1).reshape(out, -1)``, so ``weight_v`` is in (kh, kw, in)
  order. :func:`fold_sn` computes exactly that sigma (float64);
- ``standing_means/vars`` (50, C): row i holds the statistics for psi = (i + 1) * 0.02
  (``BigGANConfig.n_stats`` rows). ``running_mean/var`` are unused by the eval forward and
  dropped. The reference's own row selection (``get_standing_stats``) extrapolates
  between rows for off-grid psi; bigganctl interpolates correctly
  (:func:`bigganctl.models.biggan.stat_weights`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ...models.config import TFHUB_CONFIGS, BigGANConfig
from . import _biggan as B
from .checkpoint import check_keys, load_state_dict_file, torch_sn_keys
from ..registry import ModelSpec

FORMAT = "ivclab"


def check_config(cfg: BigGANConfig) -> None:
    B.require(cfg, FORMAT, shortcut="always", out_kernel=3, sn_linear=True, cbn_affine_bn=False)
    if cfg.n_stats < 1:
        raise ValueError("the ivclab format needs n_stats > 0 (standing statistics)")
    if len(cfg.attn_blocks) > 1:
        raise ValueError("the ivclab format holds a single attention block")


def _block_name(i: int) -> str:
    return "gblock" if i == 0 else f"gblock_{i}"


def key_prefix(part: B.Part) -> str:
    name = part.internal.rsplit(".", 1)[-1]
    if part.kind in ("conv", "cbn"):
        sub = {"conv1": "conv0", "conv2": "conv1", "conv_sc": "conv_sc",
               "bn1": "hyperbn", "bn2": "hyperbn_1"}[name]
        return f"{_block_name(part.block)}.{sub}"
    return {"embed": "linear", "linear": "g_z.g_linear", "attn": "attention",
            "out_bn": "scaledcrossreplicabn", "out_conv": "conv_2d"}[part.kind]


def _bn_keys(p: str, c: int, rows: int, affine: bool) -> dict[str, tuple[int, ...]]:
    keys = {f"{p}.weight": (c,), f"{p}.bias": (c,)} if affine else {}
    keys.update({f"{p}.running_mean": (c,), f"{p}.running_var": (c,), f"{p}.num_batches_tracked": (),
                 f"{p}.standing_means": (rows, c), f"{p}.standing_vars": (rows, c)})
    return keys


ATTN_KEYS = {"theta": "theta", "phi": "phi", "g": "g", "o": "o_conv"}   # internal -> ivclab


def expected_keys(cfg: BigGANConfig) -> dict[str, tuple[int, ...]]:
    """Every key of a ``biggan*-release.pt`` for ``cfg`` with its shape, in the file's order."""
    check_config(cfg)
    weight = B.sn_rule(torch_sn_keys, bias=True)
    return B.keys_of(B.layout(cfg), key_prefix, {
        "embed": B.embed_keys, "linear": weight, "conv": weight, "out_conv": weight,
        "cbn": lambda p, part: {**_bn_keys(f"{p}.crossreplicabn", part.shape[0], cfg.n_stats, affine=False),
                                **torch_sn_keys(f"{p}.gamma", part.shape, bias=False),
                                **torch_sn_keys(f"{p}.beta", part.shape, bias=False)},
        "attn": B.attn_rule(torch_sn_keys, gamma=(1,), names=ATTN_KEYS),
        "out_bn": lambda p, part: _bn_keys(p, part.shape[0], cfg.n_stats, affine=True),
    })


def sn_matrix(w: torch.Tensor) -> torch.Tensor:
    """ivclab's ``reshape_weight_to_matrix``: 4-d weights flattened in (kh, kw, in) order."""
    if w.dim() == 4:
        return w.permute(0, 2, 3, 1).reshape(w.shape[0], -1)
    return w.reshape(w.shape[0], -1)


def fold_sn(weight_orig: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``weight_orig / sigma``, ``sigma = u . (W v)`` with ivclab's flattening (eval mode:
    no power iteration). Float64 inside, float32 out."""
    sigma = float(torch.dot(u.double(), sn_matrix(weight_orig.double()) @ v.double()))
    return weight_orig.float() / sigma


def _rows_to_internal(w: torch.Tensor, cfg: BigGANConfig) -> torch.Tensor:
    """First-linear rows (or bias) from ivclab's (H, W, C) order to the internal (C, H, W)."""
    hw = cfg.bottom_width ** 2
    return w.reshape(hw, -1, *w.shape[1:]).transpose(0, 1).reshape(w.shape)


def _cols_to_internal(w: torch.Tensor, cfg: BigGANConfig) -> torch.Tensor:
    """Hyper-BN columns from ivclab's [z_chunk, class] to the internal [class, z_chunk]."""
    k = cfg.z_chunk_size
    return torch.cat([w[:, k:], w[:, :k]], dim=1)


def to_internal(state: dict[str, torch.Tensor], cfg: BigGANConfig, *, what: str = FORMAT) -> B.StateDict:
    """A ``biggan*-release.pt`` state dict -> the internal layout (strict; SN folded)."""
    check_keys(state, expected_keys(cfg), what=what)
    out: B.StateDict = {}

    def sn(p: str) -> torch.Tensor:
        return fold_sn(state[f"{p}.weight_orig"], state[f"{p}.weight_u"], state[f"{p}.weight_v"])

    for part in B.layout(cfg):
        p, q = key_prefix(part), part.internal
        if part.kind == "embed":
            out[f"{q}.weight"] = B.f32(state[f"{p}.weight"])
        elif part.kind == "linear":
            out[f"{q}.weight"] = _rows_to_internal(sn(p), cfg).contiguous()
            out[f"{q}.bias"] = _rows_to_internal(B.f32(state[f"{p}.bias"]), cfg).contiguous()
        elif part.kind in ("conv", "out_conv"):
            out[f"{q}.weight"] = sn(p)
            out[f"{q}.bias"] = B.f32(state[f"{p}.bias"])
        elif part.kind == "cbn":
            out[f"{q}.scale"] = _cols_to_internal(sn(f"{p}.gamma"), cfg)
            out[f"{q}.shift"] = _cols_to_internal(sn(f"{p}.beta"), cfg)
            out[f"{q}.mean"] = B.f32(state[f"{p}.crossreplicabn.standing_means"])
            out[f"{q}.var"] = B.f32(state[f"{p}.crossreplicabn.standing_vars"])
        elif part.kind == "attn":
            out[f"{q}.gamma"] = B.f32(state[f"{p}.gamma"]).reshape(())
            for name, theirs in ATTN_KEYS.items():
                out[f"{q}.{name}.weight"] = sn(f"{p}.{theirs}")
        elif part.kind == "out_bn":
            out[f"{q}.weight"] = B.f32(state[f"{p}.weight"])
            out[f"{q}.bias"] = B.f32(state[f"{p}.bias"])
            out[f"{q}.mean"] = B.f32(state[f"{p}.standing_means"])
            out[f"{q}.var"] = B.f32(state[f"{p}.standing_vars"])
    return out


def read(path: str | Path, spec: ModelSpec | None = None) -> tuple[BigGANConfig, B.StateDict]:
    """Read a ``biggan{128,256,512}-release.pt`` strictly into the internal layout."""
    cfg = B.spec_config(spec, TFHUB_CONFIGS[128])
    check_config(cfg)
    state = load_state_dict_file(path)
    return cfg, to_internal(state, cfg, what=B.spec_label(spec, path, FORMAT))


