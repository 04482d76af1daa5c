"""Sections 6-11 of benchmarks/gpu_check.py: layout, forced OOM, CLI smoke, compiled modes.

``python benchmarks/gpu_sections_more.py autotune FOLDER DEVICE BACKEND`` is the child
process of the autotune section (killed at its hard timeout); it prints one JSON line.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

import bigganctl
from bigganctl.runtime import compiling
from bigganctl.api.bench import generation_throughput
from bigganctl.generate import batch_size_for, iter_uint8


def _rate(ctx, fn, *args, reps: int = 3) -> float:
    """Calls per second of ``fn(*args)`` after one untimed call."""
    fn(*args)
    ctx.sync()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn(*args)
    ctx.sync()
    return reps / (time.perf_counter() - t0)


# ----------------------------------------------------------------------------- 6. layout

def section_layout(ctx, check) -> None:
    """NCHW vs NHWC on a copy of the loader's model (the cached one keeps its layout)."""
    from bigganctl.metrics.features import build_extractor, place, tf32

    G = ctx.load(128, "bf16")
    strides = [p.stride() for p in G.parameters()]
    bs = min(batch_size_for(G, None), ctx.n["batch_cap"])
    row: dict = {"net": f"deep-128 bf16, batch {bs}"}
    rows = [row]
    for fmt, name in ((torch.contiguous_format, "nchw"), (torch.channels_last, "nhwc")):
        Gc = copy.deepcopy(G).to(memory_format=fmt)
        row[f"{name}_images_per_s"] = generation_throughput(Gc, n=3 * bs, batch_size=bs)["images_per_s"]
        del Gc
    check.value("loader_cache_untouched", [p.stride() for p in G.parameters()] == strides)
    del G
    ctx.free()
    net = place(build_extractor(), ctx.device)
    x = torch.randint(0, 256, (bs, 3, 128, 128), dtype=torch.uint8, device=ctx.device)
    row = {"net": f"inception fp32, batch {bs}"}
    rows.append(row)
    with torch.inference_mode(), tf32(False):
        for fmt, name in ((torch.contiguous_format, "nchw"), (torch.channels_last, "nhwc")):
            net = net.to(memory_format=fmt)
            row[f"{name}_images_per_s"] = bs * _rate(ctx, net, x, reps=1 if ctx.cpu else 3)
    del net, x
    ctx.free()
    check.table("memory layout, eager (images/s)", rows)


# ----------------------------------------------------------------------------- 7. forced OOM

class _Sizes:
    """A generator (or extractor) that records batch sizes; on the CPU it simulates an
    out-of-memory error above ``limit`` rows."""

    def __init__(self, fn, limit: int | None):
        self.fn, self.limit, self.sizes = fn, limit, []

    def __getattr__(self, name):
        return getattr(self.__dict__["fn"], name)

    def __call__(self, x, *rest):
        self.sizes.append(x.shape[0])
        if self.limit is not None and x.shape[0] > self.limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated on the CPU)")
        return self.fn(x, *rest)


def section_oom(ctx, check) -> None:
    """Generation (+ uint8) and features under a memory cap: the back-off must give the
    images and features of an uncapped run."""
    from bigganctl.metrics.features import InceptionFeatures

    n = ctx.n["oom"]
    G = ctx.load(128, "fp32")
    labels, seeds = torch.arange(n) * 7 % G.num_classes, list(range(n))
    want = torch.cat([x for _, x in iter_uint8(G, labels, seeds, 0.5, batch_size=max(1, n // 8))])
    fx = InceptionFeatures(ctx.inception(), device=ctx.device)
    f_want, _ = fx(want)
    cuda = ctx.device.type == "cuda"
    cap = _Sizes(G, None if cuda else max(1, n // 4))
    fx2 = InceptionFeatures(ctx.inception(), device=ctx.device)
    fx2._run = _Sizes(fx2._run, None if cuda else max(1, n // 4))
    if cuda:
        ctx.free()
        total = torch.cuda.mem_get_info()[1]
        torch.cuda.set_per_process_memory_fraction(min(1.0, (torch.cuda.memory_reserved() + 2**30) / total))
    try:
        got = torch.cat([x for _, x in iter_uint8(cap, labels, seeds, 0.5, batch_size=n)])
        f_got, _ = fx2(want)
    finally:
        if cuda:
            torch.cuda.set_per_process_memory_fraction(1.0)
    d = (got.int() - want.int()).abs()
    rel = ((f_got - f_want).abs().max() / f_want.abs().max()).item()
    tried, rows_after = cap.sizes[:4], fx2.rows
    row = {"n": n, "generator_batches_tried": str(tried), "images_max_levels": int(d.max()),
           "images_frac_differing": float((d > 0).float().mean()), "features_rows_after": rows_after,
           "features_max_rel_diff": rel}
    del G, fx, fx2, cap
    ctx.free()
    check.table("forced out-of-memory: back-off vs an uncapped run", [row])
    if len(set(tried)) < 2 or rows_after is None:
        raise RuntimeError(f"no back-off happened (generator batches {tried}, features rows {rows_after})")


# ----------------------------------------------------------------------------- 8. CLI smoke

def section_cli(ctx, check) -> None:
    n = ctx.n["cli"]
    cmd = [sys.executable, "-m", "bigganctl", "eval", "fid", "--model", str(ctx.folder(128)), "--ref", ctx.ref(),
           "--inception-weights", ctx.inception(), "--n", str(n), "--device", ctx.device.type, "--dtype", "bf16",
           "--json"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(Path(bigganctl.__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]))
    ctx.free()
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=ctx.tmp, env=env, capture_output=True, text=True,
                       timeout=max(5.0, ctx.time_left() - 3))
    row = {"command": "bigganctl eval fid --device " + ctx.device.type + f" --dtype bf16 --n {n}",
           "exit_code": r.returncode, "seconds": time.perf_counter() - t0}
    if r.returncode == 0:
        doc = json.loads(r.stdout)
        row.update(fid=doc["fid"], batch=doc.get("batch_size"))
    else:
        row["stderr"] = (r.stderr.strip().splitlines() or [""])[-1][:200]
    check.table("CLI smoke run", [row])
    if r.returncode != 0:
        raise RuntimeError(f"exit {r.returncode}: {row['stderr']}")


# ----------------------------------------------------------------------------- 9-11. compiled

def _agreement(ctx, G, mode: str, bs: int) -> dict:
    """Compiled vs eager uint8 over two whole batches (two consecutive CUDA-graph replays,
    kept on the device until both ran) and a padded partial batch."""
    n = 2 * bs + max(1, bs // 2 - 1)
    labels, seeds = torch.arange(n) * 7 % G.num_classes, list(range(5000, 5000 + n))
    C = compiling.compiled_generator(G, mode)
    got = [x for _, x in iter_uint8(C, labels, seeds, 0.5, batch_size=bs, on_device=True)]
    got = [x.cpu() for x in got]
    want = torch.cat([x for _, x in iter_uint8(G, labels, seeds, 0.5, batch_size=bs)])
    d = (torch.cat(got).int() - want.int()).abs()
    per = [int(b.max()) for b in d.split([x.shape[0] for x in got])]
    return {"batches": str([x.shape[0] for x in got]), "max_levels_per_batch": str(per),
            "frac_differing": float((d > 0).float().mean()), "frac_over_1": float((d > 1).float().mean()),
            "consecutive_batches_distinct": not torch.equal(got[0], got[1])}


def _compiled(ctx, check, mode: str, title: str) -> None:
    from bigganctl.runtime.compiling import compile_counters

    G = ctx.load(128, "bf16")
    bs = min(batch_size_for(G, None), ctx.n["batch_cap"])
    before = compile_counters()
    r = generation_throughput(G, n=3 * bs, batch_size=bs, psi=0.5, compile=mode)
    row = {"mode": mode, "dtype": "bf16", "batch": bs, "warmup_s": r["warmup_s"], "images_per_s": r["images_per_s"],
           "cudagraph_skips": r.get("cudagraph_skips")}
    check.table(title, [row])
    row.update(_agreement(ctx, G, mode, bs))
    after = compile_counters()
    check.value("counters", {k: after[k] - before[k] for k in after})
    check.table(title, [row])
    del G
    ctx.free()
    if not row["consecutive_batches_distinct"]:
        raise RuntimeError("two consecutive compiled batches are identical: an output buffer was reused")


def section_compiled(ctx, check) -> None:
    _compiled(ctx, check, "default", "compiled (default), deep-128 bf16; uint8 vs eager")


def section_cudagraphs(ctx, check) -> None:
    _compiled(ctx, check, "reduce-overhead", "compiled (reduce-overhead: CUDA graphs), deep-128 bf16; uint8 vs eager")


def section_autotune(ctx, check) -> None:
    """max-autotune in a child process killed at the section's limit; its log to a file."""
    log = ctx.check.out / "autotune.log"
    cmd = [sys.executable, __file__, "autotune", str(ctx.folder(128)), ctx.device.type, compiling.BACKEND,
           str(ctx.n["batch_cap"])]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(Path(bigganctl.__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]))
    ctx.free()
    with open(log, "w") as f:
        try:
            subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, timeout=max(5.0, ctx.time_left() - 3))
        except subprocess.TimeoutExpired:
            check.table("max-autotune (child process)", [{"status": "killed at the time limit", "log": str(log)}])
            return
    lines = [ln for ln in log.read_text().splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"no result (see {log})")
    check.table("max-autotune (child process)", [json.loads(lines[-1])])


def _autotune_child(folder: str, device: str, backend: str, cap: int) -> None:
    from bigganctl.weights.loader import load_generator

    compiling.BACKEND = backend
    G = load_generator(folder, device=device, dtype="bf16", progress=False)
    bs = min(batch_size_for(G, None), cap)
    r = generation_throughput(G, n=3 * bs, batch_size=bs, psi=0.5, compile="max-autotune")
    print(json.dumps({"mode": "max-autotune", "batch": bs, "warmup_s": r["warmup_s"],
                      "images_per_s": r["images_per_s"], "cudagraph_skips": r.get("cudagraph_skips")}), flush=True)


if __name__ == "__main__" and sys.argv[1:2] == ["autotune"]:
    _autotune_child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
