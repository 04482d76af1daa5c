"""The one batched generation loop: (classes, seeds, psi) -> uint8 image batches.

Everything that makes pixels (sample, eval, sweep, interp) goes through here, so the
noise, the class conditioning and the 8-bit conversion (:func:`to_uint8`) are the same
everywhere.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from .paths import InterpPath, frame_conditions, waypoint_noise
from .runtime.device import default_batch_size
from .noise import class_plan, truncated_noise
from .types import Classes, Generator


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float images -> uint8, ``round((x + 1) * 127.5)`` clamped to [0, 255].

    Computed in float32 whatever the input dtype, so bf16/fp16 generators quantise the
    same way. Shape and device are kept.
    """
    return ((x.float() + 1.0) * 127.5).round_().clamp_(0, 255).to(torch.uint8)


def model_device(G: torch.nn.Module) -> torch.device:
    for t in G.parameters():
        return t.device
    for t in G.buffers():
        return t.device
    return torch.device("cpu")


def batch_size_for(G: torch.nn.Module, batch_size: int | None) -> int:
    """``batch_size``, or the default rule (:func:`bigganctl.runtime.device.default_batch_size`)."""
    return batch_size or default_batch_size(model_device(G), G.resolution)


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
               start: int = 0, on_device: bool = False) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield ``(offset, uint8 [b, 3, R, R])`` for samples ``start..N-1``, on the CPU (or on
    G's device with ``on_device``: the feature extractor takes them there, no host trip).

    Sample i is generated from ``seeds[i]`` and ``labels[i]`` (or ``z[i]``), so results do
    not depend on ``batch_size`` beyond float-kernel rounding. A CUDA out-of-memory error
    halves the batch and retries it (:func:`generate_backoff`): the same images, smaller.
    """
    n = len(seeds) if z is None else z.shape[0]
    if labels.shape[0] != n:
        raise ValueError(f"{labels.shape[0]} labels for {n} samples")
    bs = [batch_size_for(G, batch_size)]
    lo = start
    while lo < n:
        x = generate_backoff(G, labels, seeds, psi, z, lo, min(n, lo + bs[0]), bs)
        yield lo, (x if on_device else x.cpu())
        lo += x.shape[0]


def generate_backoff(G, labels: torch.Tensor, seeds: Sequence[int], psi: float, z: torch.Tensor | None,
                     lo: int, hi: int, bs: list[int]) -> torch.Tensor:
    """uint8 samples ``lo..hi-1`` on G's device (or fewer: the first ``bs[0]`` after a
    back-off). On ``torch.cuda.OutOfMemoryError`` in the generator or the 8-bit conversion
    ``bs[0]`` is halved (down to 1) and the batch retried; noise is per sample, so the
    images are the ones an unconstrained run makes."""
    while True:
        hi = min(hi, lo + bs[0])
        try:
            zb = None if z is None else z[lo:hi]
            x = generate_batch(G, labels[lo:hi], seeds[lo:hi], psi, z=zb)
            return to_uint8(x)
        except torch.cuda.OutOfMemoryError:
            if bs[0] <= 1:
                raise
        # outside the handler: the traceback no longer holds the batch's tensors
        x = None
        bs[0] = max(1, (hi - lo) // 2)
        limit = getattr(G, "limit_rows", None)     # a compiled generator pads to its shape
        if limit is not None:
            limit(bs[0])
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def iter_interp_tiles(G, path: InterpPath, psi: float, *, batch_size: int | None = None
                      ) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield ``(frame, uint8 [columns, 3, R, R])`` in order, generating batches of whole
    frames through :func:`iter_uint8` (memory bounded by the batch)."""
    noise = waypoint_noise(path, G.z_dim, psi, G.truncation)
    bs = batch_size_for(G, batch_size)
    m = path.n_columns
    per = max(1, bs // m)
    for lo in range(0, path.n_frames, per):
        hi = min(lo + per, path.n_frames)
        y, z = frame_conditions(path, lo, hi, num_classes=G.num_classes, noise=noise,
                                psi=psi, convention=G.truncation)
        chunk = torch.cat([x for _, x in iter_uint8(G, y, [], psi, batch_size=bs, z=z)])
        for i in range(hi - lo):
            yield lo + i, chunk[i * m:(i + 1) * m]


def strip_images(G: Generator, *, psis: Sequence[float], n: int, seed: int, classes: Classes, columns: int,
                 batch_size: int | None = None) -> torch.Tensor:
    """uint8 [len(psis) * columns, 3, R, R]: samples ``0..columns-1`` of the evaluation
    (seeds ``seed..``, the class plan's first classes) at each psi, psi-major."""
    labels = class_plan(classes, n, G.num_classes, seed)[0][:columns]
    seeds = list(range(seed, seed + columns))
    out = torch.empty(len(psis) * columns, 3, G.resolution, G.resolution, dtype=torch.uint8)
    for r, psi in enumerate(psis):
        for off, x in iter_uint8(G, labels, seeds, psi, batch_size=batch_size):
            out[r * columns + off:r * columns + off + x.shape[0]] = x
    return out
