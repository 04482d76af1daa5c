"""The one batched generation loop: (classes, seeds, psi) -> uint8 image batches.

Everything that makes pixels (sample, eval, sweep, interp) goes through here, so the
noise, the class conditioning and the 8-bit conversion are the same everywhere.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from .imaging import to_uint8
from .sampling import truncated_noise


def default_batch_size(device: torch.device | str, resolution: int) -> int:
    """A batch that fits comfortably: small on CPU, larger on accelerators."""
    dev = torch.device(device)
    if dev.type == "cpu":
        return 8 if resolution <= 128 else 4
    return {128: 64, 256: 32}.get(resolution, 16)


def model_device(G: torch.nn.Module) -> torch.device:
    for t in G.parameters():
        return t.device
    for t in G.buffers():
        return t.device
    return torch.device("cpu")


@torch.inference_mode()
def generate_batch(G, labels: torch.Tensor, seeds: Sequence[int], psi: float,
                   z: torch.Tensor | None = None) -> torch.Tensor:
    """One batch: float [B, 3, R, R] in [-1, 1] on G's device.

    ``labels`` int64 [B] or float class vectors [B, num_classes]; noise from the seeds
    (per sample, G's truncation convention) unless ``z`` is given.
    """
    if z is None:
        z = truncated_noise(list(seeds), G.z_dim, psi, G.truncation)
    return G(z, labels, psi)


def iter_uint8(G, labels: torch.Tensor, seeds: Sequence[int], psi: float, *,
               batch_size: int | None = None, z: torch.Tensor | None = None,
               start: int = 0) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield ``(offset, uint8 [b, 3, R, R] on the CPU)`` for samples ``start..N-1``.

    Sample i is generated from ``seeds[i]`` and ``labels[i]`` (or ``z[i]``), so results do
    not depend on ``batch_size`` beyond float-kernel rounding.
    """
    n = len(seeds) if z is None else z.shape[0]
    if labels.shape[0] != n:
        raise ValueError(f"{labels.shape[0]} labels for {n} samples")
    bs = batch_size or default_batch_size(model_device(G), G.resolution)
    for lo in range(start, n, bs):
        hi = min(lo + bs, n)
        zb = None if z is None else z[lo:hi]
        x = generate_batch(G, labels[lo:hi], seeds[lo:hi], psi, z=zb)
        yield lo, to_uint8(x).cpu()
