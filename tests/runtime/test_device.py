"""Device and dtype resolution (bigganctl.runtime.device): names and aliases accepted, errors
naming the ``device`` / ``dtype`` parameter, the default batch size per device and output size
(from free CUDA memory, simulated), the memory check, pinned non-blocking host-to-CUDA copies.
No GPU needed: CUDA and MPS availability are simulated."""

from __future__ import annotations

import pytest
import torch

from bigganctl.errors import UsageError
from bigganctl.runtime import device as runtime


@pytest.fixture
def no_accelerator(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def test_resolve_device_names(no_accelerator):
    assert runtime.resolve_device("auto") == torch.device("cpu")
    assert runtime.resolve_device(None) == torch.device("cpu")
    assert runtime.resolve_device(" CPU ") == torch.device("cpu")
    dev = torch.device("cuda", 3)
    assert runtime.resolve_device(dev) is dev                  # a torch.device is taken as given


def test_auto_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert runtime.resolve_device("auto") == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert runtime.resolve_device("auto") == torch.device("mps")


@pytest.mark.parametrize("spec, needle", [
    ("gpu", "unknown device 'gpu' (auto, cpu, cuda, cuda:N, mps)"),
    ("cuda", "CUDA is not available"),
    ("cuda:0", "CUDA is not available"),
    ("mps", "MPS is not available"),
    ("meta", "unsupported device 'meta'"),
])
def test_resolve_device_errors_name_the_parameter(no_accelerator, spec, needle):
    with pytest.raises(UsageError) as e:
        runtime.resolve_device(spec)
    assert e.value.param == "device" and needle in e.value.message


def test_a_cuda_index_beyond_the_devices_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert runtime.resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(UsageError) as e:
        runtime.resolve_device("cuda:2")
    assert e.value.param == "device" and e.value.message == "no CUDA device 2 (found 2)"


@pytest.mark.parametrize("spec, dtype", [
    ("fp32", torch.float32), ("float32", torch.float32), ("float", torch.float32), (" BF16", torch.bfloat16),
    ("bfloat16", torch.bfloat16), ("fp16", torch.float16), ("half", torch.float16), (torch.float16, torch.float16),
])
def test_resolve_dtype_names_and_aliases(spec, dtype):
    assert runtime.resolve_dtype(spec) is dtype
    assert runtime.dtype_name(dtype) == {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


@pytest.mark.parametrize("spec, needle", [("fp8", "unknown dtype 'fp8' (fp32, bf16, fp16)"),
                                          ("", "unknown dtype ''"),
                                          (torch.float64, "unsupported dtype torch.float64")])
def test_resolve_dtype_errors_name_the_parameter(spec, needle):
    with pytest.raises(UsageError) as e:
        runtime.resolve_dtype(spec)
    assert e.value.param == "dtype" and needle in e.value.message


@pytest.mark.parametrize("device, resolution, size", [
    ("cpu", None, 16), ("cpu", 64, 8), ("cpu", 128, 8), ("cpu", 256, 4), ("cpu", 512, 4),
    ("mps", None, 100), ("mps", 128, 64), ("mps", 256, 32), ("mps", 512, 16),
    (torch.device("cpu"), 128, 8),
])
def test_default_batch_size_off_cuda(device, resolution, size):
    assert runtime.default_batch_size(device, resolution) == size


def test_cuda_batch_size_is_a_power_of_two_within_its_limit(monkeypatch):
    free = {"bytes": 0}
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (free["bytes"], 80 * 2**30))
    per_sample = runtime.BYTES_PER_PIXEL * 128 * 128
    for samples, want in [(0, 1), (1, 1), (2 * 7, 4), (2 * 8, 8), (2 * 9, 8), (2 * 10**6, 512)]:
        free["bytes"] = samples * per_sample               # half the free memory is used
        assert runtime.cuda_batch_size(torch.device("cuda"), 128) == want, samples
    free["bytes"] = 2 * 100 * per_sample
    assert runtime.cuda_batch_size(torch.device("cuda"), 128, limit=16) == 16


def test_check_memory_names_the_parameter(monkeypatch):
    monkeypatch.setattr(runtime, "available_memory", lambda: 2 * 2**30)
    runtime.check_memory(2**30, what="the features", param="n", hint="lower --n")
    with pytest.raises(UsageError) as e:
        runtime.check_memory(3 * 2**30, what="the features", param="n", hint="lower --n")
    assert e.value.param == "n" and e.value.hint == "lower --n"
    assert e.value.message == "the features needs about 3.0 GiB in memory, 2.0 GiB are available"
    monkeypatch.setattr(runtime, "available_memory", lambda: None)          # unknown: no refusal
    runtime.check_memory(2**60, what="x", param="n", hint="")


def test_cuda_batch_size_from_free_memory(monkeypatch):
    free = {"bytes": 40 * 2**30}
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (free["bytes"], 141 * 2**30))
    big = runtime.default_batch_size("cuda", 128)
    assert big >= 64 and big & (big - 1) == 0         # a power of two
    free["bytes"] = 2 * 2**30
    assert 1 <= runtime.default_batch_size("cuda", 512) < runtime.default_batch_size("cuda", 128) <= big
    assert runtime.default_batch_size("cpu", 128) == 8                         # unchanged


class _FakeHost:
    """Records how a CPU tensor is moved to a CUDA device (no GPU needed)."""

    def __init__(self):
        self.device, self.calls = torch.device("cpu"), []

    def is_pinned(self):
        return False

    def pin_memory(self):
        self.calls.append("pin")
        return self

    def to(self, *args, **kw):
        self.calls.append((args, kw))
        return self


def test_host_to_cuda_copies_are_pinned_and_non_blocking():
    t = _FakeHost()
    runtime.to_device(t, "cuda", torch.bfloat16)
    assert t.calls[0] == "pin" and t.calls[1] == ((torch.device("cuda"),), {"non_blocking": True})
    assert t.calls[2] == ((), {"device": torch.device("cuda"), "dtype": torch.bfloat16})
    x = torch.ones(2)
    assert runtime.to_device(x, "cpu") is x                 # the CPU path: no copy
