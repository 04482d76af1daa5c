"""Writers of Hugging Face BigGAN-deep checkpoint folders (:mod:`bigganctl.weights.formats.hf`):
any HF-layout state dict, or one with sane random weights, for tests and benchmarks."""

from __future__ import annotations

from pathlib import Path

import torch

from .._io import atomic_path
from ..weights.formats.checkpoint import StateDict
from ..weights.formats.hf import CONFIG_NAME, expected_keys
from ..models.biggan_deep import state_shapes
from ..models.config import BigGANDeepConfig
from ..models.random_init import analytic_bn_stats, converged_sn_vectors, raw_random_weights, sn_param_names


def random_hf_state_dict(config: BigGANDeepConfig, seed: int = 0) -> StateDict:
    """A sane random HF-format state dict: seeded raw weights, ``weight_u``/``weight_v``
    after 30 power iterations (as a trained model stores them), and the per-truncation BN
    statistics those folded weights produce (positive variances)."""
    raw = raw_random_weights(config, seed, state_shapes(config))
    hf: StateDict = {}
    inv_sigma: dict[str, float] = {}
    for name in sn_param_names(config):
        prefix = name[: -len(".weight")]
        u, v = converged_sn_vectors(raw[name])
        hf[f"{prefix}.weight_orig"], hf[f"{prefix}.weight_u"], hf[f"{prefix}.weight_v"] = raw[name], u, v
        inv_sigma[name] = 1.0 / _sn_sigma(raw[name], u, v)
    stats = analytic_bn_stats(config, raw, inv_sigma)
    everything = {**raw, **stats, **hf}
    return {k: everything[k].contiguous() for k in expected_keys(config)}


def _sn_sigma(w: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> float:
    """``u . (W v)`` in float64, as :func:`fold_torch_sn` divides by."""
    wm = w.reshape(w.shape[0], -1)
    return float(torch.dot(u.double(), (wm @ v).double()))


def write_checkpoint(folder: str | Path, config: BigGANDeepConfig, state: StateDict, *,
                     safetensors: bool = False) -> Path:
    """Write ``config.json`` and ``pytorch_model.bin`` (or ``model.safetensors``) into
    ``folder`` (created), each atomically. ``state`` is in the HF layout."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / CONFIG_NAME) as tmp:
        tmp.write_text(config.to_hf_json(), encoding="utf-8")
    if safetensors:
        from safetensors.torch import save_file

        with atomic_path(folder / "model.safetensors") as tmp:
            save_file(state, str(tmp))
    else:
        with atomic_path(folder / "pytorch_model.bin") as tmp:
            torch.save(state, tmp)
    return folder


def write_random_checkpoint(folder: str | Path, config: BigGANDeepConfig, seed: int = 0,
                            safetensors: bool = False) -> Path:
    """A real HF-format checkpoint folder with sane random weights, loadable by both
    ``pytorch_pretrained_biggan.BigGAN.from_pretrained(folder)`` (``.bin`` only) and
    bigganctl."""
    return write_checkpoint(folder, config, random_hf_state_dict(config, seed), safetensors=safetensors)
