"""Generation benchmark: bigganctl vs pytorch-pretrained-biggan, side by side.

Both load the same random BigGAN-deep weights (written once in the Hugging Face folder
format) and run the same z, classes and psi, batch by batch, in fp32 on the CPU. Each
measurement runs in its own subprocess, so load time and peak RSS are per library; the
two libraries alternate for ``--rounds`` rounds and the best round counts. The outputs of
both are compared (max |diff|) as a sanity check that they compute the same images.

    python benchmarks/bench_generate.py                      # deep-128, batch 8, 32 images
    python benchmarks/bench_generate.py --res 256 --batch 4 --n 16 --json out/bench.json
    python benchmarks/bench_generate.py --compile            # adds the compiled column

``--compile`` adds ``bigganctl-compiled`` (``bigganctl.runtime.compiling.compiled_generator``): its
warm-up (compilation) is reported separately, and run twice per round with one compile
cache, so the second process shows the persistent cache's warm-up.

The reference is timed the way its README uses it, plus ``.eval()`` (its
``from_pretrained`` returns the model in train mode, where spectral norm runs a power
iteration on every call) and ``torch.no_grad()``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
IMPLS = ("bigganctl", "pytorch-pretrained-biggan")
COMPILED = "bigganctl-compiled"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------------------------------
# Child: one library, one measurement, JSON on stdout

def child(impl: str, folder: str, inputs: str, threads: int, out_path: str) -> None:
    t0 = time.perf_counter()
    import torch

    torch.set_num_threads(threads)
    data = torch.load(inputs, weights_only=True)
    z, y, psi, batch = data["z"], data["y"], float(data["psi"]), int(data["batch"])
    if impl.startswith("bigganctl"):
        from bigganctl.runtime.compiling import compiled_generator
        from bigganctl.weights.loader import load_generator

        t_import = time.perf_counter() - t0
        t1 = time.perf_counter()
        G = load_generator(folder, device="cpu", dtype="fp32", progress=False)
        load_s = time.perf_counter() - t1
        G = compiled_generator(G, "default" if impl == COMPILED else None)

        def run(zb, yb):
            return G(zb, yb, psi)
    else:
        from pytorch_pretrained_biggan import BigGAN

        t_import = time.perf_counter() - t0
        t1 = time.perf_counter()
        G = BigGAN.from_pretrained(folder).eval()
        load_s = time.perf_counter() - t1
        onehot = torch.nn.functional.one_hot(y, 1000).float()

        def run(zb, yb_idx):
            return G(zb, onehot[yb_idx], psi)

    n = z.shape[0]
    outs = []
    with torch.no_grad():
        idx = torch.arange(n)
        ours = impl.startswith("bigganctl")
        t1 = time.perf_counter()
        run(z[:batch], y[:batch] if ours else idx[:batch])      # warm-up (compilation), untimed
        warmup_s = time.perf_counter() - t1
        t1 = time.perf_counter()
        for lo in range(0, n, batch):
            sl = slice(lo, lo + batch)
            outs.append(run(z[sl], y[sl] if ours else idx[sl]))
        gen_s = time.perf_counter() - t1
    torch.save(torch.cat(outs)[:4].clone(), out_path)
    print(json.dumps({"impl": impl, "import_s": t_import, "load_s": load_s, "gen_s": gen_s, "warmup_s": warmup_s,
                      "images_per_s": n / gen_s, "peak_rss_mb": _peak_rss_mb()}))


# ---------------------------------------------------------------------------------------
# Parent

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--res", type=int, default=128, choices=(128, 256, 512))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--n", type=int, default=32, help="images per timed run (multiple of --batch)")
    ap.add_argument("--psi", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds; the best counts")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    ap.add_argument("--compile", action="store_true", help="add bigganctl compiled (torch.compile)")
    ap.add_argument("--child", nargs=4, metavar=("IMPL", "FOLDER", "INPUTS", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child[0], args.child[1], args.child[2], args.threads, args.child[3])
        return 0

    import torch

    sys.path.insert(0, str(REPO))
    from bigganctl.testing import hf
    from bigganctl.models.config import DEEP_CONFIGS
    from bigganctl.noise import truncated_noise

    cfg = DEEP_CONFIGS[args.res]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "BIGGANCTL_OFFLINE": "1", "OMP_NUM_THREADS": str(args.threads)}
    with tempfile.TemporaryDirectory(prefix="bigganctl-bench-") as tmp:
        folder = Path(tmp) / f"biggan-deep-{args.res}"
        t0 = time.perf_counter()
        hf.write_random_checkpoint(folder, cfg, 0)
        print(f"wrote random biggan-deep-{args.res} weights in {time.perf_counter() - t0:.1f}s "
              f"({(folder / 'pytorch_model.bin').stat().st_size / 1e6:.0f} MB)", file=sys.stderr)
        seeds = list(range(args.n))
        inputs = Path(tmp) / "inputs.pt"
        torch.save({"z": truncated_noise(seeds, cfg.z_dim, args.psi, "deepmind"),
                    "y": torch.randint(0, 1000, (args.n,), generator=torch.Generator().manual_seed(0)),
                    "psi": args.psi, "batch": args.batch}, inputs)
        best: dict[str, dict] = {}
        impls = (*IMPLS, COMPILED, COMPILED) if args.compile else IMPLS
        for rnd in range(args.rounds):
            for impl in impls:
                out = Path(tmp) / f"{impl}.pt"
                p = subprocess.run([sys.executable, __file__, "--threads", str(args.threads), "--child",
                                    impl, str(folder), str(inputs), str(out)],
                                   env={**env, "BIGGANCTL_HOME": str(Path(tmp) / "home")},
                                   capture_output=True, text=True)
                if p.returncode != 0:
                    print(p.stderr, file=sys.stderr)
                    return 1
                r = json.loads(p.stdout.strip().splitlines()[-1])
                print(f"round {rnd + 1} {impl}: {r['images_per_s']:.2f} images/s, warm-up {r['warmup_s']:.1f} s",
                      file=sys.stderr)
                if impl not in best:
                    best[impl] = r
                    if impl == COMPILED:            # the very first compiled process: a cold cache
                        r["warmup_cold_s"] = r["warmup_s"]
                else:   # best of the rounds, metric by metric
                    b = best[impl]
                    b["images_per_s"] = max(b["images_per_s"], r["images_per_s"])
                    for k in ("load_s", "import_s", "gen_s", "warmup_s", "peak_rss_mb"):
                        b[k] = min(b[k], r[k])
        diff = (torch.load(Path(tmp) / "bigganctl.pt") - torch.load(Path(tmp) / "pytorch-pretrained-biggan.pt")
                ).abs().max().item()

    ours, ref = best["bigganctl"], best["pytorch-pretrained-biggan"]
    result = {"model": f"biggan-deep-{args.res}", "batch": args.batch, "n": args.n, "psi": args.psi,
              "dtype": "fp32", "device": "cpu", "threads": args.threads, "rounds": args.rounds,
              "torch": torch.__version__, "python": platform.python_version(),
              "cpu": platform.processor() or platform.machine(), "max_abs_diff": diff,
              "speedup": ours["images_per_s"] / ref["images_per_s"], "results": [ours, ref]}
    if COMPILED in best:
        result["results"].append(best[COMPILED])
        result["speedup_compiled"] = best[COMPILED]["images_per_s"] / ref["images_per_s"]
    print(f"\nbiggan-deep-{args.res}, fp32, CPU ({args.threads} threads), batch {args.batch}, "
          f"{args.n} images, psi {args.psi}; best of {args.rounds} alternating rounds, "
          f"each in a fresh process")
    print(f"{'':28}{'images/s':>10}{'load s':>9}{'import s':>10}{'warm-up s':>11}{'peak RSS MiB':>14}")
    for r in result["results"]:
        print(f"{r['impl']:28}{r['images_per_s']:10.2f}{r['load_s']:9.2f}{r['import_s']:10.2f}"
              f"{r['warmup_s']:11.1f}{r['peak_rss_mb']:14.0f}")
    print(f"speed-up {result['speedup']:.2f}x; outputs agree to max |diff| {diff:.1e}")
    if COMPILED in best:
        print(f"compiled speed-up {result['speedup_compiled']:.2f}x; warm-up {best[COMPILED]['warmup_cold_s']:.0f} s "
              f"with an empty compile cache, {best[COMPILED]['warmup_s']:.0f} s from the cache (best later process)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
