"""Small model configurations shared by the tests: a BigGAN-deep of a few thousand weights
(``TINY``), narrow BigGAN configurations of every checkpoint format (``SMALL``), and a
wrapper that simulates CUDA running out of memory above a batch size (``OOMAbove``)."""

from __future__ import annotations

import dataclasses

import torch

from bigganctl.models.config import (AUTHOR_CONFIG_128, TFHUB_CONFIGS, TUTORIAL_CONFIG_128,
                                     TUTORIAL_SEED_CONFIG_128, BigGANDeepConfig)
from bigganctl.weights.formats import ajbrock, ivclab, tutorial

#: BigGAN-deep at 8 px with 8 channels: a forward pass takes milliseconds on the CPU.
TINY = BigGANDeepConfig(output_dim=8, channel_width=8, attention_layer_position=1,
                        layers=((False, 16, 16), (True, 16, 8), (False, 8, 4), (False, 4, 2), (False, 2, 1)))

# Small configs for numerics: narrow channels, fewer blocks where attention is costly.
SMALL = {
    "ajbrock": dataclasses.replace(AUTHOR_CONFIG_128, ch=8, n_classes=10),
    "ivclab": dataclasses.replace(TFHUB_CONFIGS[128], ch=8, n_classes=10),
    "ivclab512": dataclasses.replace(TFHUB_CONFIGS[512], ch=8, n_classes=10, resolution=128,
                                     in_mult=(16, 16, 8, 8, 4), out_mult=(16, 8, 8, 4, 2),
                                     dim_z=96, attn_res=(64,)),
    # Coursera: attention after every block (nested); 64 px keeps the 64x64 attention cheap
    "coursera": dataclasses.replace(TUTORIAL_CONFIG_128, ch=8, n_classes=10, resolution=64,
                                    in_mult=(16, 8, 4, 2), out_mult=(8, 4, 2, 1), dim_z=100,
                                    attn_res=(8, 16, 32, 64)),
    # the seed document's flat layout: one attention block at 64x64, block 0 keeps channels
    "seed": dataclasses.replace(TUTORIAL_SEED_CONFIG_128, ch=8, n_classes=10),
}
SMALL_FORMAT = {"ajbrock": ajbrock, "ivclab": ivclab, "ivclab512": ivclab, "coursera": tutorial,
                "seed": tutorial}


class OOMAbove:
    """A generator that runs out of CUDA memory on batches larger than ``limit``."""

    def __init__(self, G, limit: int):
        self.G, self.limit, self.sizes = G, limit, []

    def __getattr__(self, name):
        return getattr(self.G, name)

    def __call__(self, z, y, psi):
        self.sizes.append(z.shape[0])
        if z.shape[0] > self.limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return self.G(z, y, psi)
