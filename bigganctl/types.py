"""Named types of the arguments every operation shares (what a notebook may pass).

``Model``: a registered name (``"biggan-deep-128"``), a model folder, a
:class:`~bigganctl.weights.registry.ModelSpec`, or an already loaded generator.
``Classes``: a class spec or several (an index, a name or WordNet id, ``"balanced"`` for
evaluations, comma-separated strings), or resolved :class:`~bigganctl.classes.ClassInfo`.
``Compile``: False/None (eager), True (torch.compile's default mode) or a mode name.
``Device`` / ``Dtype``: a name (``"auto"``, ``"cuda:1"``; ``"fp32"``, ``"bf16"``) or the torch object.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Union

import torch

from .classes import ClassInfo
from .weights.registry import ModelSpec

Model = Union[str, os.PathLike, ModelSpec, torch.nn.Module]
ClassSpec = Union[int, str, ClassInfo]
Classes = Union[ClassSpec, Sequence[ClassSpec]]
Compile = Union[bool, str, None]
Device = Union[str, torch.device]
Dtype = Union[str, torch.dtype]
#: A loaded generator (``BigGAN``, ``BigGANDeep``, a compiled wrapper, or any module with
#: the same ``(z, class, psi)`` call and ``z_dim`` / ``num_classes`` / ``truncation``).
Generator = torch.nn.Module

__all__ = ["Model", "ClassSpec", "Classes", "Compile", "Device", "Dtype", "Generator"]
