"""Hugging Face BigGAN-deep checkpoints (``pytorch-pretrained-biggan``): read, check, fold, write.

A checkpoint is a folder with ``config.json`` (the HF config, ``json.dumps(indent=2,
sort_keys=True)``) and ``pytorch_model.bin`` (a plain state dict; ``model.safetensors`` is
accepted too), or a single weights file whose config comes from the model spec.

Key map, HF -> bigganctl (:class:`bigganctl.models.biggan_deep.BigGANDeep`)::

    <module>.weight_orig, <module>.weight_u, <module>.weight_v  ->  <module>.weight
    every other key                                             ->  the same key

where ``<module>.weight = weight_orig / sigma`` and ``sigma = u . (W v)`` (W flattened to
``[out, -1]``), exactly what ``torch.nn.utils.spectral_norm`` computes in eval mode from the
stored ``u`` and ``v`` (no power iteration).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from ...errors import CheckpointError
from ...models.biggan_deep import state_shapes
from ...models.random_init import sn_param_names
from ...models.config import BigGANDeepConfig
from ..registry import ModelSpec
from .checkpoint import (
    WEIGHT_FILES,
    StateDict,
    check_keys,
    find_weights_file,
    fold_torch_sn,
    load_state_dict_file,
    torch_sn_keys,
)

CONFIG_NAME = "config.json"

_SN_SUFFIXES = ("weight_orig", "weight_u", "weight_v")


# ----------------------------------------------------------------------------- layout

def expected_keys(config: BigGANDeepConfig) -> dict[str, tuple[int, ...]]:
    """Every key of an HF BigGAN-deep state dict and its shape, in the port's order."""
    sn = set(sn_param_names(config))
    internal = state_shapes(config)
    out: dict[str, tuple[int, ...]] = {}
    for name, shape in internal.items():
        prefix = name.rsplit(".", 1)[0]
        if name in sn:
            if f"{prefix}.bias" not in internal:      # bias-free SN module
                out.update(torch_sn_keys(prefix, shape))
        elif name.endswith(".bias") and f"{prefix}.weight" in sn:
            out[name] = shape                         # torch order: bias, weight_orig, _u, _v
            out.update(torch_sn_keys(prefix, internal[f"{prefix}.weight"]))
        else:
            out[name] = shape
    return out


def to_internal(state: StateDict) -> StateDict:
    """HF state dict (keys already checked) -> bigganctl's layout, spectral norm folded."""
    out: StateDict = {}
    for key, t in state.items():
        if key.endswith((".weight_u", ".weight_v")):
            continue
        if key.endswith(".weight_orig"):
            prefix = key[: -len(".weight_orig")]
            out[f"{prefix}.weight"] = fold_torch_sn(t, state[f"{prefix}.weight_u"], state[f"{prefix}.weight_v"])
        else:
            out[key] = t
    return out


# ----------------------------------------------------------------------------- reading

def read(path: str | Path, spec: ModelSpec | None = None) -> tuple[BigGANDeepConfig, StateDict]:
    """Read an HF BigGAN-deep checkpoint -> ``(config, state dict in bigganctl's layout)``.

    ``path``: a folder with ``config.json`` and ``pytorch_model.bin`` or
    ``model.safetensors``; or one weights file (its config: a ``config.json`` beside it,
    else ``spec.config``). Keys are checked strictly (one CheckpointError lists every
    missing, unexpected and mis-shaped key); spectral norm is folded as torch does in eval
    mode.
    """
    p = Path(path)
    if p.is_dir():
        weights = find_weights_file(p, WEIGHT_FILES)
        if weights is None:
            raise CheckpointError(
                f"{p}: no {' or '.join(WEIGHT_FILES)} in this folder (Hugging Face BigGAN-deep format)")
        cfg_file = p / CONFIG_NAME
    elif p.is_file():
        weights, cfg_file = p, p.parent / CONFIG_NAME
    else:
        raise CheckpointError(f"weights not found: {p}")

    if cfg_file.is_file():
        config = read_config(cfg_file)
    elif spec is not None and isinstance(getattr(spec, "config", None), BigGANDeepConfig):
        config = spec.config
    else:
        raise CheckpointError(f"{weights}: no {CONFIG_NAME} beside it and no BigGAN-deep model spec to take the config from")

    state = load_state_dict_file(weights)
    name = getattr(spec, "name", None) or "BigGAN-deep"
    check_keys(state, expected_keys(config), what=f"{name} (Hugging Face format, {weights})")
    bad = [k for k, t in state.items() if t.is_floating_point() and not _finite(t)]
    if bad:
        raise CheckpointError(f"{weights}: non-finite values (NaN/inf) in " + ", ".join(bad[:10])
                              + (f" and {len(bad) - 10} more" if len(bad) > 10 else ""))
    out = to_internal(state)
    folded_bad = [k for k in sn_param_names(config) if not _finite(out[k])]
    if folded_bad:
        raise CheckpointError(f"{weights}: spectral norm of {', '.join(folded_bad[:10])} is zero "
                              f"(weight_u / weight_v do not match weight_orig)")
    return config, out


def _finite(t: torch.Tensor) -> bool:
    """No NaN or inf (min and max propagate NaN): one reduction, no boolean copy."""
    if t.numel() == 0:
        return True
    lo, hi = torch.aminmax(t)
    return math.isfinite(float(lo)) and math.isfinite(float(hi))


def read_config(path: str | Path) -> BigGANDeepConfig:
    """Parse and validate an HF BigGAN-deep ``config.json``."""
    p = Path(path)
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{p}: not a readable JSON config ({e})") from None
    try:
        if not isinstance(d, dict):
            raise TypeError("top level is not an object")
        config = BigGANDeepConfig.from_hf_dict(d)
        _validate(config)
    except (TypeError, ValueError, KeyError) as e:
        raise CheckpointError(f"{p}: not a BigGAN-deep config ({e})") from None
    return config


def _validate(c: BigGANDeepConfig) -> None:
    for f in ("output_dim", "z_dim", "channel_width", "num_classes", "n_stats"):
        v = getattr(c, f)
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise ValueError(f"{f} must be a positive integer, got {v!r}")
    if c.n_stats < 2:
        raise ValueError("n_stats must be >= 2")
    if not c.layers:
        raise ValueError("layers is empty")
    if not isinstance(c.eps, (int, float)) or not c.eps > 0:
        raise ValueError(f"eps must be > 0, got {c.eps!r}")
    ch = c.channel_width
    if c.layers[0][1] != 16:
        raise ValueError("the first layer must take 16 * channel_width channels (4x4x16ch input)")
    for i, (_, a, b) in enumerate(c.layers):
        if a <= 0 or b <= 0 or (ch * a) % 4 or (a != b and 2 * b != a):
            raise ValueError(f"layer {i}: unsupported channel multipliers ({a}, {b})")
        if i and c.layers[i - 1][2] != a:
            raise ValueError(f"layer {i}: input {a} does not match the previous output {c.layers[i - 1][2]}")
    if c.layers[-1][2] != 1 or ch < 3:
        raise ValueError("the last layer must output channel_width (>= 3) channels (multiplier 1)")
    if not 0 <= c.attention_layer_position <= len(c.layers):
        raise ValueError(f"attention_layer_position {c.attention_layer_position} is out of range")
    if 4 * 2 ** sum(bool(u) for u, _, _ in c.layers) != c.output_dim:
        raise ValueError(f"layers upsample 4x4 to {4 * 2 ** sum(bool(u) for u, _, _ in c.layers)}, "
                         f"not output_dim {c.output_dim}")


__all__ = ["read", "read_config", "expected_keys", "to_internal"]
