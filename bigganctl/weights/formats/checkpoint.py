"""Helpers shared by the format adapters: safe file reading, strict key checks, SN folding.

Pickles are read with ``torch.load(weights_only=True)`` only: a file that needs arbitrary
code to unpickle is refused (the code never runs). Every adapter checks its keys strictly
and reports all missing, unexpected and mis-shaped keys in one readable error.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from collections.abc import Mapping

import torch

from ...errors import CheckpointError

StateDict = dict[str, torch.Tensor]


#: Weights files in a model folder, in order of preference: THE one rule (the loader, the
#: hf reader and ``models info`` all use :func:`find_weights_file`). safetensors first, as
#: Hugging Face does. Exact names first, then any file with a weights extension.
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
WEIGHT_PATTERNS = (*WEIGHT_FILES, "*.safetensors", "*.bin", "*.pth", "*.pt")


def find_weights_file(folder: str | Path, patterns: tuple[str, ...] = WEIGHT_PATTERNS) -> Path | None:
    """The weights file of a model folder: the first of ``patterns`` that matches a file
    (ties within a pattern: by name); None if none does."""
    folder = Path(folder)
    for pattern in patterns:
        hits = sorted(p for p in folder.glob(pattern) if p.is_file() and not p.name.startswith("."))
        if hits:
            return hits[0]
    return None


def load_state_dict_file(path: str | Path) -> StateDict:
    """Read a state dict from ``.safetensors`` or a torch pickle (``.pt/.pth/.bin``), safely.

    Raises CheckpointError for unreadable files, unsafe pickles and non-dict contents.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"weights file not found: {p}")
    if p.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return dict(load_file(str(p), device="cpu"))
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(f"{p}: not a readable safetensors file ({e})") from None
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True, mmap=_can_mmap(p))
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"{p}: refused to unpickle; the file needs arbitrary code to load "
            f"(only plain tensors are accepted, torch.load(weights_only=True)).",
            hint=f"detail: {str(e).splitlines()[0][:200]}") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as e:
        raise CheckpointError(f"{p}: not a readable PyTorch checkpoint ({str(e).splitlines()[0][:200]})") from None
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{p}: expected a state dict of tensors, got {type(obj).__name__}")
    return dict(obj)


def _can_mmap(p: Path) -> bool:
    try:
        return zipfile.is_zipfile(p)   # mmap works for the zip-based format only
    except OSError:
        return False


def check_keys(state: Mapping[str, torch.Tensor], expected: Mapping[str, tuple[int, ...]],
               *, what: str) -> None:
    """Strict check: every expected key present with its shape, nothing unexpected.

    Raises one CheckpointError listing every problem, e.g.::

        biggan-deep-128 (hf): 1 missing, 1 unexpected, 1 mis-shaped key(s)
          missing:    generator.gen_z.bias
          unexpected: generator.gen_z.bias_typo
          mis-shaped: embeddings.weight: file (128, 999), expected (128, 1000)
    """
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    misshaped = [f"{k}: file {tuple(state[k].shape)}, expected {tuple(expected[k])}"
                 for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k])]
    if not (missing or unexpected or misshaped):
        return
    lines = [f"{what}: {len(missing)} missing, {len(unexpected)} unexpected, "
             f"{len(misshaped)} mis-shaped key(s)"]

    def block(label: str, items: list[str], limit: int = 20) -> None:
        for i, k in enumerate(items[:limit]):
            lines.append(f"  {label if i == 0 else ' ' * len(label)} {k}")
        if len(items) > limit:
            lines.append(f"  {' ' * len(label)} ... and {len(items) - limit} more")

    block("missing:   ", missing)
    block("unexpected:", unexpected)
    block("mis-shaped:", misshaped)
    raise CheckpointError("\n".join(lines))


def torch_sn_keys(prefix: str, shape: tuple[int, ...], *, bias: bool = False) -> dict[str, tuple[int, ...]]:
    """Keys and shapes ``torch.nn.utils.spectral_norm`` stores for a weight of ``shape``
    (``bias`` first when the layer has one, then ``weight_orig``, ``weight_u``, ``weight_v``)."""
    cols = 1
    for d in shape[1:]:
        cols *= d
    keys = {f"{prefix}.bias": (shape[0],)} if bias else {}
    keys.update({f"{prefix}.weight_orig": tuple(shape), f"{prefix}.weight_u": (shape[0],),
                 f"{prefix}.weight_v": (cols,)})
    return keys


def fold_torch_sn(weight_orig: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Fold ``torch.nn.utils.spectral_norm`` (eval mode) into a plain weight.

    In eval mode torch uses the stored ``u`` and ``v`` without iterating:
    ``sigma = u . (W_mat v)``, ``W = weight_orig / sigma`` with ``W_mat`` the weight
    flattened to (out, -1). Computed in float64, returned in the original dtype.
    """
    w = weight_orig.double()
    w_mat = w.reshape(w.shape[0], -1)
    sigma = torch.dot(u.double(), w_mat @ v.double())
    return (w / sigma).to(weight_orig.dtype)
