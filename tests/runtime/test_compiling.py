"""torch.compile: compiled vs eager pixels, one graph (no recompile on the last partial batch
or a new psi), the option everywhere, the persistent cache folder; CUDA out-of-memory
back-off (simulated on the CPU); CUDA-graph warm-up outside the timed window of bench."""

from __future__ import annotations

import copy

import pytest
import torch
from torch._dynamo.utils import counters

from bigganctl.runtime import compiling
from bigganctl.errors import UsageError
from bigganctl.generate import iter_uint8
from bigganctl.models.biggan_deep import BigGANDeep

from _interp_tiny import assert_pixels_close
from _tiny_configs import TINY, OOMAbove

LABELS = torch.arange(10) * 97 % 1000
SEEDS = list(range(10))


@pytest.fixture(scope="module")
def tiny():
    return BigGANDeep(TINY).random_init_(3).eval().requires_grad_(False)


def _images(G, psi: float = 0.5, batch_size: int = 4) -> torch.Tensor:
    return torch.cat([x for _, x in iter_uint8(G, LABELS, SEEDS, psi, batch_size=batch_size)])


@pytest.fixture
def capture_only(monkeypatch):
    """dynamo's graph capture without inductor: recompiles and the compiled formulation in
    seconds (the inductor run is the slow test below)."""
    monkeypatch.setattr(compiling, "BACKEND", "eager")
    torch._dynamo.reset()
    counters.clear()
    yield
    torch._dynamo.reset()


@pytest.mark.numerics
def test_one_graph_for_partial_batches_and_every_psi(tiny, capture_only):
    eager = _images(tiny)
    C = compiling.CompiledGenerator(tiny, "default")
    got = _images(C)                                   # batches 4, 4, 2 (padded to 4)
    _images(C, psi=0.8)                                # psi is data: no new graph
    assert counters["stats"]["unique_graphs"] == 1, dict(counters["stats"])
    assert not counters["recompiles"]
    assert_pixels_close(got, eager, frac=1e-4)         # the batched formulation


def test_wrapper_is_the_generator_elsewhere(tiny, capture_only):
    C = compiling.compiled_generator(tiny, "default")
    assert compiling.compiled_generator(tiny, "default") is C            # one per process
    assert compiling.compiled_generator(C, None) is C and compiling.eager(C) is tiny
    assert (C.z_dim, C.resolution, C.truncation) == (tiny.z_dim, tiny.resolution, tiny.truncation)
    assert list(C.state_dict()) == list(tiny.state_dict())


def test_resolve_compile():
    assert compiling.resolve_compile(False) is None and compiling.resolve_compile(None) is None
    assert compiling.resolve_compile(True) == "default"
    assert compiling.resolve_compile("max-autotune") == "max-autotune"
    with pytest.raises(UsageError) as e:
        compiling.resolve_compile("fastest")
    assert e.value.param == "compile"


def test_cache_dir_under_home_unless_set(monkeypatch, tmp_path):
    from bigganctl.weights.hub import home

    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    assert compiling.enable_cache() == str(home() / "compile")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))
    assert compiling.cache_dir() == str(tmp_path / "mine")


@pytest.mark.parametrize("command", [["sample"], ["eval", "all"], ["sweep"], ["interp"], ["stats", "compute"],
                                     ["bench"]])
def test_every_network_command_has_compile(cli, command):
    r = cli(*command, "--help")
    assert "--compile" in r.stdout and "--compile-mode" in r.stdout


def test_bad_compile_mode_is_a_usage_error(cli, tmp_path):
    r = cli("sample", "--weights", "random", "--compile-mode", "fastest", "--out", str(tmp_path / "a.png"))
    assert r.exit_code == 2 and "--compile-mode" in r.stderr


@pytest.mark.slow
@pytest.mark.numerics
@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_inductor_pixels_equal_eager(tiny, layout):
    """Compiled (inductor, batched) vs eager (per-sample kernels): uint8 at most one level
    apart in at most 0.01 % of the values; one graph for batches 4, 4, 2. In both weight
    layouts (the loader's CPU layout for BigGAN-deep is NHWC)."""
    G = copy.deepcopy(tiny)
    if layout == "nhwc":
        G.to(memory_format=torch.channels_last)
    torch._dynamo.reset()
    counters.clear()
    got = _images(compiling.CompiledGenerator(G, "default"))
    assert counters["stats"]["unique_graphs"] == 1
    assert_pixels_close(got, _images(tiny), frac=1e-4)


# ----------------------------------------------------------------------------- OOM back-off

@pytest.mark.numerics
def test_out_of_memory_halves_the_batch_with_identical_images(tiny):
    want = _images(tiny, batch_size=8)
    G = OOMAbove(tiny, limit=3)
    got = _images(G, batch_size=8)
    assert torch.equal(got, want)                     # per-sample noise and kernels on the CPU
    assert G.sizes[:3] == [8, 4, 2] and max(G.sizes[3:]) <= 2


def test_out_of_memory_at_batch_one_is_raised(tiny):
    with pytest.raises(torch.cuda.OutOfMemoryError):
        _images(OOMAbove(tiny, limit=0), batch_size=2)


# ----------------------------------------------------------------------------- long processes

def test_instances_and_dtypes_have_their_own_recompile_limit(capture_only):
    """Dynamo counts recompiles per code object: with one shared ``core`` code, the bf16
    copy would hit the limit (here 1) and run eager without a word."""
    a = BigGANDeep(TINY).random_init_(3).eval().requires_grad_(False)
    b = BigGANDeep(TINY).random_init_(4).eval().requires_grad_(False)
    c = copy.deepcopy(a).to(torch.bfloat16)
    with torch._dynamo.config.patch(recompile_limit=1):
        for G in (a, b, c):
            _images(compiling.compiled_generator(G, "default"))
    got = compiling.compile_counters()
    assert got["recompile_limit_hits"] == 0 and counters["frames"]["ok"] == 3, dict(counters["frames"])
    assert got["unique_graphs"] == 3


def test_del_frees_the_generator_and_its_compiled_wrapper(capture_only):
    import gc
    import weakref

    G = BigGANDeep(TINY).random_init_(5).eval().requires_grad_(False)
    C = compiling.compiled_generator(G, "default")
    _images(C)
    assert compiling.compiled_generator(G, "default") is C
    assert not copy.deepcopy(G).__dict__[compiling._ATTR]     # a copy starts without wrappers
    refs = weakref.ref(G), weakref.ref(C)
    del G, C
    gc.collect()
    assert refs[0]() is None and refs[1]() is None


@pytest.mark.numerics
def test_out_of_memory_in_the_uint8_conversion_backs_off_too(tiny, monkeypatch):
    import bigganctl.generate as gen

    want = _images(tiny, batch_size=8)
    sizes = []

    def to_uint8(x):
        sizes.append(x.shape[0])
        if x.shape[0] > 3:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(x)

    real = gen.to_uint8
    monkeypatch.setattr(gen, "to_uint8", to_uint8)
    assert torch.equal(_images(tiny, batch_size=8), want)   # per-sample kernels on the CPU
    assert sizes[:3] == [8, 4, 2] and max(sizes[3:]) <= 2


def test_cuda_graph_modes_warm_up_outside_the_timed_window(tiny, capture_only, monkeypatch):
    """reduce-overhead records its graph on the second call: three untimed batches (warm-up,
    recording, first replay) before the clock starts; the skip counter is reported."""
    from bigganctl.api import bench

    calls = []
    real = bench.iter_uint8

    def counting(G, labels, seeds, psi, **kw):
        calls.append(len(seeds))
        return real(G, labels, seeds, psi, **kw)

    monkeypatch.setattr(bench, "iter_uint8", counting)
    res = bench.generation_throughput(tiny, n=4, batch_size=2, compile="reduce-overhead")
    assert calls == [6, 4] and res["n"] == 4 and res["cudagraph_skips"] == 0
    calls.clear()
    bench.generation_throughput(tiny, n=4, batch_size=2)
    assert calls == [2, 4]
