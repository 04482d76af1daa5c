"""Shared helpers for the metrics tests: a random Inception file and small image sets."""

from __future__ import annotations

import atexit
import contextlib
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

_TMP: Path | None = None


def _tmp() -> Path:
    global _TMP
    if _TMP is None:
        _TMP = Path(tempfile.mkdtemp(prefix="bigganctl-metrics-tests-"))
        atexit.register(shutil.rmtree, _TMP, ignore_errors=True)
    return _TMP


def inception_file(seed: int = 0) -> Path:
    """A random-weight inception-v3-compat file, written once per test process."""
    from bigganctl.testing.inception import write_random_inception

    p = _tmp() / f"inception-random-{seed}.pth"
    if not p.exists():
        write_random_inception(p, seed=seed)
    return p


def random_extractor_stats(path: Path, *, features: bool) -> Path:
    """Reference statistics labelled with the random Inception file's extractor, no forward
    pass: 40 stored 2048-d features at 128 px (``features=True``), or an arbitrary 16 px
    ``mu``/``sigma`` of rank 16 without features."""
    from bigganctl.metrics.features import extractor_id, weights_sha256
    from bigganctl.metrics.reference import Stats, write_stats

    rng = np.random.default_rng(0)
    eid = extractor_id(weights_sha256(inception_file()))
    if features:
        feats = (0.2 + 0.01 * rng.random((40, 2048))).astype(np.float32)
        f64 = feats.astype(np.float64)
        stats = Stats(f64.mean(0), np.cov(f64, rowvar=False), feats, {"extractor_id": eid, "resolution": 128,
                                                                        "count": 40})
    else:
        a = rng.standard_normal((2048, 16)) * 0.01
        stats = Stats(0.2 + 0.01 * rng.random(2048), a @ a.T, None, {"extractor_id": eid, "resolution": 16,
                                                                       "count": 16})
    write_stats(path, stats)
    return path


def smooth_images(n: int, seed: int, size: int = 32, grid: int = 4) -> np.ndarray:
    """``n`` smooth random RGB images, uint8 NHWC (upsampled from a ``grid`` x ``grid`` noise)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, grid, grid, generator=g) * 255
    x = nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def write_folder(folder: Path, images: np.ndarray, ext: str = "png") -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i, im in enumerate(images):
        Image.fromarray(im).save(folder / f"{i:04d}.{ext}")
    return folder


class Interrupting:
    """A progress reporter that presses Ctrl-C once ``stop`` samples are done."""

    def __init__(self, stop: int | None):
        self.stop, self.initial = stop, None

    @contextlib.contextmanager
    def __call__(self, label, *, total, initial=0, unit="it"):
        self.initial = initial

        def step(done):
            if self.stop is not None and done >= self.stop:
                raise KeyboardInterrupt

        yield step


def fake_rows(monkeypatch, numbers) -> None:
    """Stand in for the evaluation of every sweep row (nothing generated, no Inception pass):
    ``numbers(psi, n, protocol)`` -> the row's result document."""
    from bigganctl.metrics import evaluation

    monkeypatch.setattr(evaluation, "generator_source", lambda G, **kw: (None, {"trunc": kw["psi"]}))
    monkeypatch.setattr(evaluation, "evaluate_source",
                        lambda src, info, **kw: numbers(info["trunc"], kw["n"], kw["protocol"]))


def mu_sigma(d: int = 2048, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A random mean and a positive semi-definite covariance of rank 8, ``d``-dimensional."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((d, 8))
    return rng.random(d), a @ a.T / 8
