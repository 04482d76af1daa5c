"""Device and dtype, resolved once at the edge and passed explicitly everywhere else."""

from __future__ import annotations

import torch

from ..errors import UsageError

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """``auto`` -> CUDA if present, else MPS, else CPU; ``cpu``, ``cuda``, ``cuda:N``, ``mps``."""
    if isinstance(spec, torch.device):
        return spec
    s = (spec or "auto").strip().lower()
    if s == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(s)
    except (RuntimeError, ValueError):
        raise UsageError(f"unknown device {spec!r} (auto, cpu, cuda, cuda:N, mps)", param="device") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError("CUDA is not available on this machine", param="device")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UsageError(f"no CUDA device {dev.index} (found {torch.cuda.device_count()})", param="device")
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise UsageError("MPS is not available on this machine", param="device")
    elif dev.type != "cpu":
        raise UsageError(f"unsupported device {spec!r}", param="device")
    return dev


def resolve_dtype(spec: str | torch.dtype = "fp32") -> torch.dtype:
    """``fp32`` | ``bf16`` | ``fp16`` (or a torch dtype) -> torch dtype."""
    if isinstance(spec, torch.dtype):
        if spec not in DTYPES.values():
            raise UsageError(f"unsupported dtype {spec}", param="dtype")
        return spec
    key = str(spec).strip().lower()
    key = {"float32": "fp32", "float": "fp32", "bfloat16": "bf16", "float16": "fp16", "half": "fp16"}.get(key, key)
    if key not in DTYPES:
        raise UsageError(f"unknown dtype {spec!r} (fp32, bf16, fp16)", param="dtype")
    return DTYPES[key]


def dtype_name(dtype: torch.dtype) -> str:
    return {v: k for k, v in DTYPES.items()}[dtype]


def default_batch_size(device: torch.device | str, resolution: int | None = None) -> int:
    """The one default batch-size rule: small on CPU, larger on accelerators.

    ``resolution``: a generator's output size; None for real images going through the
    feature extractor (no generator in memory).
    """
    dev = torch.device(device)
    if resolution is None:
        return 16 if dev.type == "cpu" else 100
    if dev.type == "cpu":
        return 8 if resolution <= 128 else 4
    if dev.type == "cuda":
        return cuda_batch_size(dev, resolution)
    return {128: 64, 256: 32}.get(resolution, 16)


#: Bytes of GPU memory one generated sample needs in fp32, per output pixel (generator
#: activations, the uint8 image and the Inception pass at 299x299), with headroom; an
#: out-of-memory error still halves the batch (bigganctl.generate.generate_backoff).
BYTES_PER_PIXEL = 3200


def cuda_batch_size(device: torch.device, resolution: int, *, limit: int = 512) -> int:
    """The largest power of two whose samples fit in half the free memory (1..limit)."""
    free, _total = torch.cuda.mem_get_info(device)
    fit = int(free * 0.5 // (BYTES_PER_PIXEL * resolution * resolution))
    bs = 1
    while bs * 2 <= min(fit, limit):
        bs *= 2
    return bs


def to_device(t: torch.Tensor, device: torch.device | str, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``t`` on ``device`` (and in ``dtype``). From the CPU to a CUDA device the copy goes
    through pinned memory with ``non_blocking=True``, so the host prepares the next batch
    (per-sample noise) while the GPU works; elsewhere this is ``t.to(device, dtype)``.
    The dtype conversion happens after the copy, on the device."""
    device = torch.device(device)
    if device.type == "cuda" and t.device.type == "cpu":
        if not t.is_pinned():
            t = t.pin_memory()
        t = t.to(device, non_blocking=True)
    return t.to(device=device, dtype=dtype)


def available_memory() -> int | None:
    """Bytes this process can still allocate: ``MemAvailable`` (Linux), lowered by a cgroup
    limit or an address-space rlimit when there is one; None where nothing is known."""
    import resource

    limits = []
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    limits.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as fh:
                text = fh.read().strip()
            if text.isdigit() and int(text) < 1 << 60:
                limits.append(int(text))
        except OSError:
            pass
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        limits.append(int(soft))
    return min(limits) if limits else None


def check_memory(need: int, *, what: str, param: str, hint: str) -> None:
    """UsageError (exit 2) naming ``param`` when ``need`` bytes exceed what is available."""
    have = available_memory()
    if have is not None and need > have:
        raise UsageError(f"{what} needs about {need / 2**30:.1f} GiB in memory, {have / 2**30:.1f} GiB are "
                         "available", param=param, hint=hint)
