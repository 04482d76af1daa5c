"""The one conversion from generator output to 8-bit pixels, shared by files and metrics."""

from __future__ import annotations

import torch


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float images -> uint8, ``round((x + 1) * 127.5)`` clamped to [0, 255].

    Computed in float32 whatever the input dtype, so bf16/fp16 generators quantise the
    same way. Shape and device are kept.
    """
    return ((x.float() + 1.0) * 127.5).round_().clamp_(0, 255).to(torch.uint8)
