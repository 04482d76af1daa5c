"""Generator output to images: the one float -> uint8 convention."""

import torch

from bigganctl.generate import to_uint8


def test_to_uint8_single_convention():
    x = torch.tensor([-1.0, -0.999, 0.0, 0.5, 1.0, 1.5, -3.0])
    assert to_uint8(x).tolist() == [0, 0, 128, 191, 255, 255, 0]
    assert to_uint8(x.bfloat16()).tolist() == to_uint8(x.bfloat16().float()).tolist()
