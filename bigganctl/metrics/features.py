"""Inception features for FID / IS / KID: torch-fidelity's ``inception-v3-compat`` extractor.

The extractor is torch-fidelity's port of the TF ``inception-2015-12-05`` graph, the network
behind the published FID and IS numbers (and ADM's reference statistics). It takes uint8
NCHW images at their native size and does the TF1-style bilinear resize to 299 and the
``(x - 128) / 128`` scaling itself, so generator output goes in as the same 8-bit pixels a
PNG would hold (``bigganctl.generate.to_uint8``) without any file or PIL round trip.

One forward pass gives both layers we need: ``'2048'`` (pool_3, FID and KID) and
``'logits_unbiased'`` (1008 logits without the bias, IS). The extractor always runs in
float32, whatever the generator's dtype.

Weights are read safely (``torch.load(weights_only=True)``, every key checked) from, in
order: an explicit path (``--inception-weights``), torch-fidelity's own cache
(``$TORCH_HOME/hub/checkpoints``), bigganctl's cache (``bigganctl models pull inception``),
or a download when online.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
from pathlib import Path

import torch

from ..runtime.device import to_device
from ..runtime.compiling import compiled_module
from ..errors import UsageError, WeightsUnavailable
from ..weights.formats.checkpoint import check_keys, load_state_dict_file
from ..weights.hub import ASSETS, cached_sha256, ensure_file
from ..progress import Reporter

EXTRACTOR = "inception-v3-compat"
FEATURE_LAYER = "2048"              # pool_3: FID and KID
LOGITS_LAYER = "logits_unbiased"    # 1008 logits without bias: IS
FEATURE_DIM = 2048
NUM_LOGITS = 1008
#: sFID's layer: TF ``mixed_6/conv:0`` = torch-fidelity's ``Mixed_6d.branch1x1`` (after its ReLU),
#: the first 7 of its 192 channels in NHWC order, flattened (ADM's evaluator).
SPATIAL_LAYER = "mixed_6/conv"
SPATIAL_MODULE = "Mixed_6d.branch1x1"
SPATIAL_CHANNELS = 7
SPATIAL_DIM = 17 * 17 * SPATIAL_CHANNELS     # 2023

#: torch-fidelity's conversion of the official TF weights (sha256 starts with the tag).
OFFICIAL_SHA256_PREFIX = "6726825d"
#: Name of the official weights as an extractor identity (same network as ADM's evaluator).
OFFICIAL_ID = "tf-inception-2015-12-05"
#: torch-fidelity's file (``bigganctl models pull inception`` fetches it into the cache).
INCEPTION_WEIGHTS = ASSETS["inception"].files[0]

UNAVAILABLE_HINT = (
    "run `bigganctl models pull inception` once with network access (it fills the cache "
    "under $BIGGANCTL_HOME), or pass --inception-weights PATH to torch-fidelity's "
    f"{INCEPTION_WEIGHTS.filename}")


def extractor_id(weights_sha256: str) -> str:
    """The identity that decides which statistics can be compared.

    The official weights are ``tf-inception-2015-12-05`` (the network of the TF FID code,
    ADM's evaluator and torch-fidelity); any other weights file is its own extractor.
    """
    if weights_sha256.startswith(OFFICIAL_SHA256_PREFIX):
        return OFFICIAL_ID
    return f"{EXTRACTOR}:sha256={weights_sha256[:16]}"


@functools.lru_cache(maxsize=1)
def _extractor_class() -> type:
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class InceptionCompat(FeatureExtractorInceptionV3):
        """torch-fidelity's extractor, built empty; the caller loads a checked state dict.

        The base constructor insists on reading a file itself with
        ``torch.load(weights_only=False)``; we hand it an empty dict instead and load the
        weights we already read safely and checked with :func:`check_keys`.
        """

        def load_state_dict(self, state_dict, *args, **kwargs):  # noqa: D401
            if len(state_dict) == 0:        # the placeholder from the base constructor
                return None
            return super().load_state_dict(state_dict, *args, **kwargs)

    return InceptionCompat


def build_extractor(state_dict: dict[str, torch.Tensor] | None = None) -> torch.nn.Module:
    """The extractor on the CPU, fp32, eval mode; random-initialised if no state dict."""
    empty = io.BytesIO()
    torch.save({}, empty)
    empty.seek(0)
    net = _extractor_class()(EXTRACTOR, [FEATURE_LAYER, LOGITS_LAYER], feature_extractor_weights_path=empty)
    if state_dict is not None:
        net.load_state_dict(state_dict, strict=True)
    return net.float().requires_grad_(False).eval()


def place(net: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``net`` on ``device``; on the CPU its weights NHWC (channels_last): oneDNN's
    convolutions and the max/avg pools then run 1.4-1.5x faster than torch-fidelity's NCHW,
    with features equal to its own within float rounding (relative 1e-6; measured in
    docs/performance.md, checked in tests/metrics/test_features.py)."""
    net = net.to(device)
    if device.type == "cpu":
        net = net.to(memory_format=torch.channels_last)
    return net


@functools.lru_cache(maxsize=1)
def state_dict_shapes() -> dict[str, tuple[int, ...]]:
    """Every key of the extractor's state dict with its shape (566 keys)."""
    return {k: tuple(v.shape) for k, v in build_extractor().state_dict().items()}


def _torch_hub_copy() -> Path | None:
    """torch-fidelity's own download, if this machine ever ran it."""
    p = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS.filename
    return p if p.is_file() else None


def _ensure_cached(progress: Reporter | None = None) -> Path:
    """bigganctl's cache (``bigganctl models pull inception``), downloading when online."""
    try:
        return ensure_file(INCEPTION_WEIGHTS, "inception", pull_name="inception",
                           alternative="--inception-weights PATH", progress=progress)
    except WeightsUnavailable as e:
        raise WeightsUnavailable(f"Inception weights for IS/FID/KID are not available: {e.message}",
                                 hint=e.hint or UNAVAILABLE_HINT) from None


def resolve_weights(path: str | os.PathLike | None = None, *, progress: Reporter | None = None) -> Path:
    """Where the Inception weights are: explicit path, torch-fidelity's cache, ours, download."""
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise UsageError(f"{p} is not a file", param="inception_weights")
        return p
    return _torch_hub_copy() or _ensure_cached(progress)


def weights_sha256(path: str | os.PathLike, *, verify: bool = False) -> str:
    """sha256 of the weights file, remembered by the hub (keyed on size and mtime);
    ``verify``: hashed again (before a mismatch is blamed on a reference)."""
    return cached_sha256(path, verify=verify)


@contextlib.contextmanager
def tf32(allowed: bool = False):
    """TF32 for matmuls and cuDNN convolutions set to ``allowed`` inside, and the process's
    flags restored afterwards (the generator keeps whatever the process chose). Where the
    newer ``fp32_precision`` API was used, its settings are saved and restored too."""
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    try:
        saved = ("legacy", matmul.allow_tf32, cudnn.allow_tf32)
    except RuntimeError:              # flags mixed through the new API: reading is refused
        saved = ("new", matmul.fp32_precision, cudnn.conv.fp32_precision, cudnn.rnn.fp32_precision)
    matmul.allow_tf32 = cudnn.allow_tf32 = allowed
    try:
        yield
    finally:
        if saved[0] == "legacy":
            matmul.allow_tf32, cudnn.allow_tf32 = saved[1], saved[2]
        else:
            matmul.fp32_precision, cudnn.conv.fp32_precision, cudnn.rnn.fp32_precision = saved[1:]


def tf32_flags() -> dict[str, object]:
    """The process's TF32 flags (printed by benchmarks/gpu_check.py)."""
    try:
        return {"matmul.allow_tf32": torch.backends.cuda.matmul.allow_tf32,
                "cudnn.allow_tf32": torch.backends.cudnn.allow_tf32}
    except RuntimeError as e:
        return {"error": str(e)[:120]}


def spatial_of(branch: torch.Tensor) -> torch.Tensor:
    """``Mixed_6d.branch1x1``'s output [B, 192, 17, 17] -> sFID's features [B, 2023]: the first
    7 channels in NHWC order, flattened (as TF's ``mixed_6/conv:0[..., :7]``; flattening NCHW
    gives a different, much larger sFID)."""
    return branch[:, :SPATIAL_CHANNELS].permute(0, 2, 3, 1).reshape(branch.shape[0], -1).float()


class InceptionFeatures:
    """uint8 NCHW batches -> (``'2048'`` features, ``'logits_unbiased'``), fp32, on ``device``;
    :meth:`with_spatial` adds sFID's ``mixed_6/conv`` features from the same forward pass.

    The extractor runs without TF32 (``allow_tf32``; :func:`tf32` sets and restores the
    flags around each call). A CUDA out-of-memory error splits the batch in halves (and
    keeps that size): the same features, smaller.

    >>> fx = InceptionFeatures("random_inception.pth", device="cpu")   # doctest: +SKIP
    >>> f, logits = fx(images_uint8)       # [B, 2048], [B, 1008]
    >>> f, logits, s = fx.with_spatial(images_uint8)                  # doctest: +SKIP
    """

    #: TF32 inside the extractor (benchmarks/gpu_check.py measures its effect on FID)
    allow_tf32 = False
    _want_spatial = False

    def __init__(self, weights: str | os.PathLike | None = None, device: torch.device | str = "cpu",
                 compile: str | None = None):
        self.path = resolve_weights(weights)
        self.sha256 = weights_sha256(self.path)
        self.id = extractor_id(self.sha256)
        state = load_state_dict_file(self.path)
        check_keys(state, state_dict_shapes(), what=f"Inception weights {self.path}")
        self.device = torch.device(device)
        self.net = place(build_extractor(state), self.device)
        self.compile = compile              # a mode (bigganctl.runtime.compiling) or None
        self._tap: dict[str, torch.Tensor] = {}
        self.net.get_submodule(SPATIAL_MODULE).register_forward_hook(self._keep_spatial)
        self._run = self.net if compile is None else compiled_module(self.net, compile)
        self.rows: int | None = None        # the batch limit after an out-of-memory error

    def _keep_spatial(self, module, inputs, output) -> None:
        if self._want_spatial:                                    # only while with_spatial runs
            self._tap["spatial"] = output[:, :SPATIAL_CHANNELS]

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"expected uint8 [B, 3, H, W], got {images.dtype} {tuple(images.shape)}")
        feats, logits, spatial = self._forward(images, spatial=False)
        return feats, logits

    @torch.inference_mode()
    def with_spatial(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(pool_3 [B, 2048], logits [B, 1008], sFID's features [B, 2023]) of one forward pass."""
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"expected uint8 [B, 3, H, W], got {images.dtype} {tuple(images.shape)}")
        self._want_spatial = True
        try:
            return self._forward(images, spatial=True)
        finally:
            self._want_spatial = False
            self._tap.clear()

    def _forward(self, images: torch.Tensor, *, spatial: bool):
        feats, logits, spat, lo, n = [], [], [], 0, images.shape[0]
        with tf32(self.allow_tf32):
            while lo < n:
                hi = min(n, lo + (self.rows or n))
                try:
                    f, g = self._run(to_device(images[lo:hi], self.device))
                    feats.append(f.float())
                    logits.append(g.float())
                    if spatial:               # a compiled extractor pads the batch: its rows first
                        spat.append(spatial_of(self._tap["spatial"][:hi - lo]))
                    lo = hi
                    continue
                except torch.cuda.OutOfMemoryError:
                    if hi - lo <= 1:
                        raise
                self._back_off((hi - lo) // 2)

        def cat(xs):
            return xs[0] if len(xs) == 1 else torch.cat(xs)

        return cat(feats), cat(logits), cat(spat) if spatial else None

    def _back_off(self, rows: int) -> None:
        self.rows = max(1, rows)
        limit = getattr(self._run, "limit_rows", None)      # a compiled extractor pads
        if limit is not None:
            limit(self.rows)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def reverify(self) -> str:
        """Hash the weights file again (the memo may be stale) and return the extractor id."""
        self.sha256 = weights_sha256(self.path, verify=True)
        self.id = extractor_id(self.sha256)
        return self.id

    def describe(self) -> dict[str, str]:
        return {"extractor": EXTRACTOR, "layer": FEATURE_LAYER, "id": self.id,
                "weights_sha256": self.sha256, "weights": str(self.path)}
