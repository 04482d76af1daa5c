"""Helpers for the BigGAN-deep tests (tests/models/test_biggan_deep.py, the HF format tests in
tests/weights/formats/test_hf.py): random HF checkpoints written once a session,
reference-port loading and its stat-row choice."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch

from bigganctl.weights.formats import hf
from bigganctl.testing import hf as hf_writer
from bigganctl.models.biggan_deep import BigGANDeep
from bigganctl.models.config import DEEP_CONFIGS
from bigganctl.noise import truncated_noise

from _tiny_configs import TINY

N_STATS = 51

_MADE: dict = {}


def random_checkpoints(tmp_path_factory):
    """``get(res)`` -> folder of a random HF checkpoint (``res`` 128/256/512 or ``"tiny"``
    for :data:`_tiny_configs.TINY`), written once per session (seed 7)."""

    def get(res):
        if res not in _MADE:
            cfg = TINY if res == "tiny" else DEEP_CONFIGS[res]
            _MADE[res] = hf_writer.write_random_checkpoint(tmp_path_factory.mktemp(f"hf_deep_{res}"), cfg,
                                                    seed=7)
        return _MADE[res]

    return get


def reference_row(psi: float, n_stats: int = N_STATS) -> tuple[int, float]:
    """What pytorch-pretrained-biggan does: ``coef, start = modf(psi / step)`` and the
    statistics ``m[start] * coef + m[start + 1] * (1 - coef)`` (weights swapped)."""
    coef, start = math.modf(psi / (1.0 / (n_stats - 1)))
    return int(start), coef


def reference_is_right(psi: float, n_stats: int = N_STATS) -> bool:
    """True where the reference selects exactly the stored row of psi (coef == 0)."""
    start, coef = reference_row(psi, n_stats)
    return coef == 0.0 and start == round(psi * (n_stats - 1))


def load_reference(folder: str | Path):
    from pytorch_pretrained_biggan import BigGAN

    logging.getLogger("pytorch_pretrained_biggan").setLevel(logging.ERROR)
    model = BigGAN.from_pretrained(str(folder))
    return model.eval().requires_grad_(False)


def load_ours(folder: str | Path, spec=None, memory_format=BigGANDeep.cpu_memory_format) -> BigGANDeep:
    """The model as the loader places it on the CPU (NHWC weights), unless told otherwise."""
    config, state = hf.read(folder, spec)
    model = BigGANDeep(config)
    model.load_state_dict(state, strict=True)
    return model.eval().requires_grad_(False).to(memory_format=memory_format)


def inputs(batch: int, psi: float, seed0: int = 0, num_classes: int = 1000):
    """(z, class indices, one-hot vectors) for ``batch`` samples."""
    z = truncated_noise(list(range(seed0, seed0 + batch)), 128, psi, "deepmind")
    y = torch.tensor([(97 * (seed0 + i) + 13) % num_classes for i in range(batch)])
    return z, y, torch.nn.functional.one_hot(y, num_classes).float()


def soft_class_vector(num_classes: int = 1000) -> torch.Tensor:
    """A non-one-hot class vector [1, num_classes]: 0.3 * class 207 + 0.7 * class 1."""
    v = torch.zeros(1, num_classes)
    v[0, 207], v[0, 1] = 0.3, 0.7
    return v


def patched_stats_checkpoint(src: Path, dst: Path, rows: dict[int, tuple[int, float]]) -> Path:
    """Copy an HF checkpoint, replacing stat row ``r`` of every BN by the correct linear
    interpolation ``m[i] * (1 - f) + m[i + 1] * f`` for ``rows[r] = (i, f)`` (float64)."""
    config = hf.read_config(src / hf.CONFIG_NAME)
    state = torch.load(src / "pytorch_model.bin", map_location="cpu", weights_only=True)
    for key, t in state.items():
        if key.endswith((".running_means", ".running_vars")):
            t64 = t.double()
            for r, (i, f) in rows.items():
                row = t64[i] if f == 0.0 else t64[i] * (1.0 - f) + t64[i + 1] * f
                t[r] = row.to(t.dtype)
    return hf_writer.write_checkpoint(dst, config, state)
