"""The machine a benchmark ran on: what ``bench --json`` records under ``system`` so that
``compare`` can refuse to compare throughput across machines."""

from __future__ import annotations

import os
import platform
from typing import Any

import torch


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, sysctl on macOS, else platform)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if platform.system() == "Darwin":
        import subprocess

        try:
            return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True,
                                  text=True, timeout=5).stdout.strip() or platform.processor()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine()


def isa() -> str:
    """The instruction set ATen's CPU kernels use (``AVX2``, ``AVX512``, ``DEFAULT``, ...;
    ``ATEN_CPU_CAPABILITY`` lowers it)."""
    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):
        return "unknown"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return f"Apple MPS ({cpu_model()})"
    return cpu_model()


def system_info(device: torch.device) -> dict[str, Any]:
    """CPU model, ISA, threads, device name and versions."""
    return {
        "cpu": cpu_model(),
        "isa": isa(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "device_name": device_name(device),
        "torch": torch.__version__,
        "cuda": torch.version.cuda if device.type == "cuda" else None,
        "platform": platform.platform(),
    }
