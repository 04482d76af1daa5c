"""What the BigGAN (not deep) tests share (tests/models/test_biggan.py and the format tests
tests/weights/formats/test_{ajbrock,ivclab,tutorial}.py): the real modules' key lists, one
random checkpoint per small config written in its real format and the models read from them,
full-size random state dicts, inputs, and a state dict broken at one key.

The checkpoints, models and states are built once per session (cached here; each test file
exposes them through its own session-scoped fixtures)."""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from _tiny_configs import SMALL, SMALL_FORMAT
from bigganctl.models.biggan import BigGAN
from bigganctl.models.config import AUTHOR_CONFIG_128, TFHUB_CONFIGS, TUTORIAL_CONFIG_128, BigGANConfig
from bigganctl.testing import ajbrock as ajbrock_writer, ivclab as ivclab_writer, tutorial as tutorial_writer
from bigganctl.weights.formats import ajbrock, ivclab, tutorial

#: copies of ../shared/data/keys/*.txt (the real modules' state_dict() key lists)
KEYS = Path(__file__).resolve().parent / "data" / "keys"

FORMATS = {"ajbrock": ajbrock, "ivclab": ivclab, "tutorial": tutorial}
FULL = {"ajbrock": AUTHOR_CONFIG_128, "ivclab": TFHUB_CONFIGS[128], "tutorial": TUTORIAL_CONFIG_128}
KEY_FILES = {"ajbrock": "ajbrock_biggan128_G_keys.txt", "ivclab": "ivclab_biggan128_keys.txt",
             "tutorial": "coursera_biggan128_G_keys.txt"}

#: Numerical parity with each reference (fp32, CPU): max |diff| <= TOL.
TOL = 1e-4

_SESSION: dict[str, dict] = {}


def read_key_file(name: str) -> list[tuple[str, tuple[int, ...]]]:
    out = []
    for line in (KEYS / name).read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key, shape = line.split("\t")
        out.append((key, tuple(int(s) for s in shape.strip("()").split(",") if s.strip())))
    return out


def load_model(cfg: BigGANConfig, sd: dict) -> BigGAN:
    m = BigGAN(cfg)
    m.load_state_dict(sd, strict=True)
    return m.eval().requires_grad_(False)


def small_files(tmp_path_factory) -> dict[str, Path]:
    """One random checkpoint per small config, written in its real format (once a session)."""
    if "files" not in _SESSION:
        root = tmp_path_factory.mktemp("biggan_small")
        out = {}
        for name, cfg in SMALL.items():
            writer = {ajbrock: ajbrock_writer, ivclab: ivclab_writer, tutorial: tutorial_writer}[SMALL_FORMAT[name]]
            path = writer.write_random_checkpoint(root / f"{name}.pth", cfg, seed=1)
            out[name] = path
        _SESSION["files"] = out
    return _SESSION["files"]


def small_models(tmp_path_factory) -> dict[str, tuple]:
    """(config read from the file, model, foreign state dict) per small config (once a session)."""
    if "models" not in _SESSION:
        out = {}
        for name, path in small_files(tmp_path_factory).items():
            cfg, sd = SMALL_FORMAT[name].read(path, SMALL[name])
            foreign = torch.load(path, weights_only=True)
            out[name] = (cfg, load_model(cfg, sd), foreign)
        _SESSION["models"] = out
    return _SESSION["models"]


@functools.cache
def full_random_states() -> dict[str, dict]:
    """A random state dict with exactly the keys and shapes of each shared key list."""
    g = torch.Generator().manual_seed(0)
    out = {}
    for fmt, fname in KEY_FILES.items():
        sd = {}
        for key, shape in read_key_file(fname):
            if key.endswith("num_batches_tracked"):
                sd[key] = torch.tensor(0)
            elif key.endswith(("var", "vars", "sv0")):
                sd[key] = torch.rand(shape, generator=g) + 0.5
            else:
                sd[key] = torch.randn(shape, generator=g)
        out[fmt] = sd
    return out


def inputs(cfg: BigGANConfig, n: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, cfg.dim_z, generator=g)
    if cfg.truncation == "deepmind":
        z = z.clamp(-2, 2)
    y = torch.randint(cfg.n_classes, (n,), generator=g)
    return z, y


def soft_classes(cfg: BigGANConfig, n: int = 2, seed: int = 5):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(3 * torch.randn(n, cfg.n_classes, generator=g), dim=1)


def broken(sd, how):
    """``sd`` with one conv1.bias removed, renamed or mis-shaped, and the key names an error
    must give."""
    sd = dict(sd)
    key = sorted(k for k in sd if k.endswith("conv1.bias"))[1]
    if how == "removed":
        del sd[key]
        return sd, [key]
    if how == "renamed":
        sd[key + "_typo"] = sd.pop(key)
        return sd, [key, key + "_typo"]
    sd[key] = torch.zeros(sd[key].shape[0] + 1)
    return sd, [key]
