"""`sample --npz` at scale: peak RSS and images/s at N = 1k, 5k, 20k, and generation alone.

The I/O path is measured with a stand-in generator (``tests/tiny_generator.py``'s
TinyGenerator at ``--res`` px: a few 8-channel convolutions, about a millisecond a sample),
put in place of the loader, so that 20k samples finish in a minute or two on a CPU; with a
real BigGAN the generation dominates and the I/O share is smaller still. Each measurement
runs in its own subprocess (peak RSS = that process's ``ru_maxrss``):

- ``npz``: ``bigganctl sample --classes balanced --n N --npz FILE --no-grid --json`` (the CLI,
  with its per-batch fsync and state record; the rate is the CLI's ``images_per_second``,
  its generate-and-write loop without start-up);
- ``gen``: the same batches through :func:`bigganctl.generate.iter_uint8`, discarded.

    python benchmarks/bench_sample_io.py                      # N = 1000,5000,20000 at 128 px
    python benchmarks/bench_sample_io.py --n 1000 --res 64 --json out/io.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys, time
sys.path[:0] = [{repo!r}, {tests!r}]
import torch
torch.set_num_threads({threads})
from tiny_generator import TinyGenerator
import bigganctl.weights.loader
G = TinyGenerator(resolution={res})
bigganctl.weights.loader.load_generator = lambda *a, **k: G
mode, n, out = {mode!r}, {n}, {out!r}
t0 = time.perf_counter()
if mode == "gen":
    from bigganctl.generate import iter_uint8
    from bigganctl.noise import eval_plan
    plan = eval_plan("balanced", n, 0, 1000)
    for _off, x in iter_uint8(G, plan.labels, plan.seeds, 1.0, batch_size={bs}):
        pass
else:
    import contextlib, io
    from bigganctl.cli.app import main
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            main(["sample", "--model", "biggan-deep-128", "--weights", "random", "--classes", "balanced", "--n", str(n), "--trunc", "1.0",
                  "--batch-size", str({bs}), "--npz", out, "--no-grid", "--quiet", "--device", "cpu", "--json"])
    except SystemExit as e:
        assert not e.code, e.code
    doc = json.loads(buf.getvalue())
dt = time.perf_counter() - t0
rate = n / dt if mode == "gen" else doc["images_per_second"]      # the CLI's: its generate+write loop
print(json.dumps({{"seconds": dt, "images_per_s": rate,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def measure(mode: str, n: int, res: int, bs: int, threads: int, out: Path) -> dict:
    code = CHILD.format(repo=str(REPO), tests=str(REPO / "tests"), threads=threads, res=res, mode=mode, n=n,
                        out=str(out), bs=bs)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=out.parent)
    if r.returncode:
        raise SystemExit(f"{mode} N={n} failed:\n{r.stderr[-3000:]}")
    res_doc = json.loads(r.stdout.strip().splitlines()[-1])
    if mode == "npz":
        res_doc["file_mb"] = out.stat().st_size / 2**20
        out.unlink()
        for p in out.parent.glob("s.npz*"):
            p.unlink()
    return res_doc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", default="1000,5000,20000", help="comma-separated sample counts")
    ap.add_argument("--res", type=int, default=128)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(dir=REPO / "benchmarks") as tmp:
        for n in [int(x) for x in args.n.split(",")]:
            gen = measure("gen", n, args.res, args.batch, args.threads, Path(tmp) / "s.npz")
            npz = measure("npz", n, args.res, args.batch, args.threads, Path(tmp) / "s.npz")
            row = {"n": n, "res": args.res, "gen_images_per_s": round(gen["images_per_s"], 1),
                   "gen_peak_rss_mb": round(gen["peak_rss_mb"], 1),
                   "npz_images_per_s": round(npz["images_per_s"], 1), "npz_peak_rss_mb": round(npz["peak_rss_mb"], 1),
                   "npz_file_mb": round(npz["file_mb"], 1),
                   "io_overhead": round(gen["images_per_s"] / npz["images_per_s"] - 1, 3)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("\n| N | res | generation alone img/s | sample --npz img/s | overhead | peak RSS gen MB | "
          "peak RSS --npz MB | file MB |\n|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['n']} | {r['res']} | {r['gen_images_per_s']} | {r['npz_images_per_s']} | "
              f"{100 * r['io_overhead']:.0f}% | {r['gen_peak_rss_mb']} | {r['npz_peak_rss_mb']} | {r['npz_file_mb']} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
