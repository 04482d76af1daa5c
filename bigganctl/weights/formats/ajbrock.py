"""The author's BigGAN-PyTorch state dict (``G_ema.pth``; ajbrock/BigGAN-PyTorch layout).

Keys (128 px release, 166 entries): ``shared.weight``; ``linear.{weight,bias,u0,sv0}``;
``blocks.{i}.0.{conv1,conv2,conv_sc}.{weight,bias,u0,sv0}``;
``blocks.{i}.0.bn{1,2}.{stored_mean,stored_var}`` + ``.{gain,bias}.{weight,u0,sv0}``;
``blocks.{i}.1.{gamma,theta,phi,g,o}`` after attention blocks;
``output_layer.0.{gain,bias,stored_mean,stored_var}``; ``output_layer.2.{weight,bias,u0,sv0}``.

Spectral norm: ajbrock's ``SN`` stores the raw ``weight``, ``u0`` (1, out) and ``sv0``
(a log of sigma, unused by the forward). In eval mode every call runs ONE power iteration
from ``u0`` without updating it: ``v = normalize(u0 W)``, ``u = normalize(v W^T)``,
``sigma = (v W^T) . u``, with ``normalize(x) = x / max(|x|, sn_eps)`` and ``W`` the
weight viewed as (out, -1). :func:`fold_sn` computes exactly that sigma once (in float64).
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import torch

from ...errors import CheckpointError
from ...models.config import AUTHOR_CONFIG_128, BigGANConfig
from . import _biggan as B
from .checkpoint import check_keys, load_state_dict_file
from ..registry import ModelSpec

FORMAT = "ajbrock"
#: ajbrock's Generator builds its output BN as ``layers.bn(ch)``: eps 1e-5 whatever BN_eps is.
OUTPUT_BN_EPS = 1e-5
#: the member of the Google-Drive release zip that holds the EMA generator.
RELEASE_MEMBER = "138k/G_ema.pth"


def check_config(cfg: BigGANConfig) -> None:
    B.require(cfg, FORMAT, shortcut="always", out_kernel=3, sn_linear=True,
              cbn_affine_bn=False, n_stats=0)


def key_prefix(part: B.Part) -> str:
    name = part.internal.rsplit(".", 1)[-1]
    return {
        "embed": "shared",
        "linear": "linear",
        "conv": f"blocks.{part.block}.0.{name}",
        "cbn": f"blocks.{part.block}.0.{name}",
        "attn": f"blocks.{part.block}.1",
        "out_bn": "output_layer.0",
        "out_conv": "output_layer.2",
    }[part.kind]


def _sn_keys(p: str, shape: tuple[int, ...], bias: bool) -> dict[str, tuple[int, ...]]:
    keys = {f"{p}.weight": shape}
    if bias:
        keys[f"{p}.bias"] = (shape[0],)
    keys[f"{p}.u0"] = (1, shape[0])
    keys[f"{p}.sv0"] = (1,)
    return keys


def expected_keys(cfg: BigGANConfig) -> dict[str, tuple[int, ...]]:
    """Every key of a ``G_ema.pth`` for ``cfg`` with its shape, in the file's order."""
    check_config(cfg)
    weight = B.sn_rule(_sn_keys, bias=True)
    return B.keys_of(B.layout(cfg), key_prefix, {
        "embed": B.embed_keys, "linear": weight, "conv": weight, "out_conv": weight,
        "cbn": lambda p, part: {f"{p}.stored_mean": part.shape[:1], f"{p}.stored_var": part.shape[:1],
                                **_sn_keys(f"{p}.gain", part.shape, bias=False),
                                **_sn_keys(f"{p}.bias", part.shape, bias=False)},
        "attn": B.attn_rule(_sn_keys, gamma=()),
        "out_bn": lambda p, part: {f"{p}.{k}": part.shape[:1] for k in ("gain", "bias", "stored_mean", "stored_var")},
    })


def fold_sn(weight: torch.Tensor, u0: torch.Tensor, eps: float) -> torch.Tensor:
    """``weight / sigma`` with sigma from one power iteration from ``u0``, as ajbrock's
    ``SN.W_()`` computes it in eval mode. Float64 inside, float32 out."""
    w = weight.double().reshape(weight.shape[0], -1)
    u = u0.double().reshape(1, -1)
    v = u @ w
    v = v / v.norm().clamp_min(eps)
    wv = v @ w.t()
    u = wv / wv.norm().clamp_min(eps)
    sigma = float((wv @ u.t()).squeeze())
    return weight.float() / sigma


def to_internal(state: dict[str, torch.Tensor], cfg: BigGANConfig, *, what: str = FORMAT) -> B.StateDict:
    """A ``G_ema.pth`` state dict -> the internal layout (strict; SN folded)."""
    check_keys(state, expected_keys(cfg), what=what)
    eps = cfg.sn_eps
    out: B.StateDict = {}

    def sn(p: str) -> torch.Tensor:
        return fold_sn(state[f"{p}.weight"], state[f"{p}.u0"], eps)

    for part in B.layout(cfg):
        p, q = key_prefix(part), part.internal
        if part.kind == "embed":
            out[f"{q}.weight"] = B.f32(state[f"{p}.weight"])
        elif part.kind in ("linear", "conv", "out_conv"):
            out[f"{q}.weight"] = sn(p)
            out[f"{q}.bias"] = B.f32(state[f"{p}.bias"])
        elif part.kind == "cbn":
            out[f"{q}.scale"] = sn(f"{p}.gain")
            out[f"{q}.shift"] = sn(f"{p}.bias")
            out[f"{q}.mean"] = B.f32(state[f"{p}.stored_mean"])[None]
            out[f"{q}.var"] = B.f32(state[f"{p}.stored_var"])[None]
        elif part.kind == "attn":
            out[f"{q}.gamma"] = B.f32(state[f"{p}.gamma"]).reshape(())
            for name in ("theta", "phi", "g", "o"):
                out[f"{q}.{name}.weight"] = sn(f"{p}.{name}")
        elif part.kind == "out_bn":
            out[f"{q}.weight"] = B.f32(state[f"{p}.gain"])
            out[f"{q}.bias"] = B.f32(state[f"{p}.bias"])
            out[f"{q}.mean"] = B.f32(state[f"{p}.stored_mean"])[None]
            out[f"{q}.var"] = B.f32(state[f"{p}.stored_var"])[None]
    return out


def file_config(cfg: BigGANConfig) -> BigGANConfig:
    """The config as ajbrock's code runs it: its output BN always uses eps 1e-5."""
    return B.replace(cfg, out_bn_eps=None if cfg.bn_eps == OUTPUT_BN_EPS else OUTPUT_BN_EPS)


def read(path: str | Path, spec: ModelSpec | None = None) -> tuple[BigGANConfig, B.StateDict]:
    """Read a ``G_ema.pth`` (or the release zip holding ``138k/G_ema.pth``) strictly."""
    cfg = file_config(B.spec_config(spec, AUTHOR_CONFIG_128))
    check_config(cfg)
    state = _load(Path(path), spec)
    return cfg, to_internal(state, cfg, what=B.spec_label(spec, path, FORMAT))


# -- reading, including the release zip -------------------------------------------------
def _load(path: Path, spec: ModelSpec | None) -> dict[str, torch.Tensor]:
    member = _release_member(path, spec)
    if member is None:
        return load_state_dict_file(path)
    with zipfile.ZipFile(path) as zf:
        data = io.BytesIO(zf.read(member))          # in memory; nothing extracted to disk
    label = f"{path}:{member}"
    try:
        obj = torch.load(data, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"{label}: refused to unpickle; the file needs arbitrary code to load "
            f"(only plain tensors are accepted, torch.load(weights_only=True)).",
            hint=f"detail: {str(e).splitlines()[0][:200]}") from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise CheckpointError(f"{label}: not a readable PyTorch checkpoint "
                              f"({str(e).splitlines()[0][:200]})") from None
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{label}: expected a state dict of tensors, got {type(obj).__name__}")
    return dict(obj)


def _release_member(path: Path, spec: ModelSpec | None) -> str | None:
    """The G_ema member when ``path`` is the release zip (not a zip-format torch file)."""
    if path.suffix.lower() != ".zip":
        return None
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (OSError, zipfile.BadZipFile) as e:
        raise CheckpointError(f"{path}: not a readable zip archive ({e})") from None
    wanted = [f.member for f in getattr(spec, "files", ()) if getattr(f, "member", None)]
    for name in wanted + [RELEASE_MEMBER]:
        if name in names:
            return name
    candidates = sorted(n for n in names if n.rsplit("/", 1)[-1] == "G_ema.pth")
    if len(candidates) == 1:
        return candidates[0]
    raise CheckpointError(
        f"{path}: expected one G_ema.pth in the archive, found "
        f"{', '.join(candidates) if candidates else 'none'}",
        hint="extract the generator you want and pass --weights PATH/G_ema.pth")
