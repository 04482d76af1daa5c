"""A random-weight Inception file in the real format, for tests and benchmarks.

The official weights cannot be downloaded everywhere (CI, air-gapped machines); tests and
benchmarks build a file with the exact 566-key state dict of torch-fidelity's
``inception-v3-compat`` and pass it as ``--inception-weights`` (or torch-fidelity's
``feature_extractor_weights_path``). Kaiming-normal convolutions keep the activations at a
sane scale through the 90-odd layers, so features differ between images and FID / IS / KID
exercise the whole pipeline; the values themselves mean nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..metrics.features import build_extractor


def random_inception_state(seed: int = 0, logit_scale: float = 128.0) -> dict[str, torch.Tensor]:
    """A deterministic random state dict for the extractor (CPU, fp32).

    Convolutions are Kaiming-normal; batch norms are identities. Pooled features of a
    random ReLU network share one dominant (positive) direction, so the classifier rows
    are drawn orthogonal to it: the 1008 logits then vary between images and the
    Inception Score is well above 1 on smooth, image-like inputs.
    """
    g = torch.Generator().manual_seed(int(seed))
    state = build_extractor().state_dict()
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        if k.endswith("conv.weight"):
            fan_in = v[0].numel()
            out[k] = torch.randn(v.shape, generator=g) * (2.0 / fan_in) ** 0.5   # Kaiming normal (ReLU)
        elif k == "fc.bias":
            out[k] = torch.randn(v.shape, generator=g) * 0.1
        else:                                       # BN: weight 1, bias 0, mean 0, var 1, count 0
            out[k] = v.clone()
    net = build_extractor(out)
    probe = torch.rand(4, 3, 4, 4, generator=g) * 255
    probe = torch.nn.functional.interpolate(probe, size=16, mode="bilinear").to(torch.uint8)
    with torch.inference_mode():
        feats, _ = net(probe)
    m = feats.mean(0)
    m = m / m.norm()
    w = torch.randn(state["fc.weight"].shape, generator=g)
    w = w - (w @ m)[:, None] * m[None, :]
    out["fc.weight"] = w * (logit_scale / w.shape[1] ** 0.5)
    return out


def write_random_inception(path: str | os.PathLike, seed: int = 0) -> Path:
    """Write a random-weight ``inception-v3-compat`` file (torch pickle, ~95 MB); return it."""
    from .._io import atomic_path

    p = Path(path)
    with atomic_path(p) as tmp:
        torch.save(random_inception_state(seed), tmp)
    return p
