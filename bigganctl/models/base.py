"""The interface every bigganctl generator offers (the loader API contract).

``G(z, y, psi)``: z float [B, z_dim]; y int64 class indices [B] or float class vectors
[B, num_classes] (soft vectors allowed: interpolation needs them); psi a float. Returns
float32 [B, 3, R, R] in [-1, 1] on G's device. Inputs may live anywhere; they are moved.
"""

from __future__ import annotations

import math
import os
from typing import Any

import torch
from torch import nn

from ..runtime.device import to_device

TRUNCATION_CONVENTIONS = ("deepmind", "paper")


class Generator(nn.Module):
    """Base class. Subclasses set the attributes and implement ``synthesize``."""

    z_dim: int
    num_classes: int
    resolution: int
    truncation: str  # "deepmind" (psi * TruncNorm(-2, 2) + per-psi BN stats) | "paper"
    #: Layout of the 4-D weights when the loader places the model on the CPU: an
    #: architecture opts into ``torch.channels_last`` where measured faster there.
    cpu_memory_format: torch.memory_format = torch.contiguous_format
    #: Names of the batch-norm statistics buffers. They stay float32 when the model is cast
    #: to bf16/fp16 (``.to(dtype)``, ``.half()``): the statistics maths runs in float32 or
    #: float64 from them, and an fp16 variance above 65504 would be inf.
    stat_buffers: tuple[str, ...] = ()

    def _apply(self, fn, recurse=True):
        keep = [(m, name, b) for m in self.modules() for name, b in m._buffers.items()
                if name in self.stat_buffers and b is not None and b.dtype == torch.float32]
        out = super()._apply(fn, recurse)
        for m, name, old in keep:
            new = m._buffers[name]
            if new is not None and new.dtype in (torch.float16, torch.bfloat16):
                m._buffers[name] = old.to(device=new.device)      # the float32 values, moved
        return out

    def synthesize(self, z: torch.Tensor, y: torch.Tensor, psi: float) -> torch.Tensor:
        """z [B, z_dim] and y [B, num_classes] float, both on the model's device and dtype."""
        raise NotImplementedError

    def _param_device_dtype(self) -> tuple[torch.device, torch.dtype]:
        p = next(self.parameters(), None)
        if p is None:
            b = next(self.buffers())
            return b.device, b.dtype
        return p.device, p.dtype

    def class_vectors(self, y: torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """Class indices [B] or vectors [B, num_classes] -> float vectors [B, num_classes]."""
        if y.dim() == 1 and not torch.is_floating_point(y):
            if y.numel() and (int(y.min()) < 0 or int(y.max()) >= self.num_classes):
                raise ValueError(f"class index out of range [0, {self.num_classes})")
            return nn.functional.one_hot(to_device(y, device, torch.long), self.num_classes).to(dtype)
        if y.dim() == 2 and y.shape[1] == self.num_classes:
            return to_device(y, device, dtype)
        raise ValueError(
            f"y must be int64 class indices [B] or float class vectors [B, {self.num_classes}], "
            f"got {tuple(y.shape)} {y.dtype}")

    # -- the split that torch.compile uses (bigganctl.runtime.compiling) ------------------------
    def prepare(self, psi: float) -> Any:
        """Everything ``psi`` decides, as tensors (e.g. batch-norm statistics): the input of
        :meth:`core`. A compiled core then takes psi as data, so a new psi is not a recompile.
        The default hands psi through (architectures override both methods)."""
        return psi

    def core(self, z: torch.Tensor, y: torch.Tensor, prepared: Any) -> torch.Tensor:
        """``synthesize`` given :meth:`prepare`'s output; z, y as in :meth:`synthesize`."""
        return self.synthesize(z, y, prepared)

    def inputs(self, z: torch.Tensor, y: torch.Tensor, psi: float) -> tuple[torch.Tensor, torch.Tensor, float]:
        """Checked ``(z, class vectors, psi)`` on the model's device and dtype."""
        device, dtype = self._param_device_dtype()
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must be [B, {self.z_dim}], got {tuple(z.shape)}")
        psi = float(psi)
        if not math.isfinite(psi) or psi <= 0:
            raise ValueError(f"psi must be a positive finite number, got {psi}")
        yv = self.class_vectors(y, device, dtype)
        if yv.shape[0] != z.shape[0]:
            raise ValueError(f"batch sizes differ: z {z.shape[0]}, y {yv.shape[0]}")
        return to_device(z, device, dtype), yv, psi

    def forward(self, z: torch.Tensor, y: torch.Tensor, psi: float = 1.0) -> torch.Tensor:
        z, yv, psi = self.inputs(z, y, psi)
        return self.synthesize(z, yv, psi).float()


def model_name(G: nn.Module, model: str | os.PathLike | nn.Module | None = None) -> str:
    """THE name of a generator in outputs: the registered (or folder) name it carries, else
    the name ``model`` was given by, else the class name."""
    spec = getattr(G, "spec", None)
    if spec is not None and getattr(spec, "name", None):
        return spec.name
    if isinstance(model, (str, os.PathLike)):
        return str(model)
    return getattr(model, "name", None) or type(model if model is not None else G).__name__
