"""Evaluation benchmark: end-to-end FID over N generated samples, and eval memory vs N.

1. *Side by side* (``--n``, default 256), CPU, the same random BigGAN-deep weights (a Hugging
   Face folder written once) and the same random Inception weights file:

   - **bigganctl**: ``bigganctl.evaluate(model=FOLDER, metrics=("fid",), n=N, ...)`` — samples
     go from the generator straight into the extractor as uint8 tensors, features stream
     into constant-memory accumulators.
   - **conventional**: ``pytorch-pretrained-biggan`` generates (same z, classes, psi),
     ``convert_to_images`` + PNG files are written, then torch-fidelity's
     ``calculate_metrics(input1=PNG_DIR, fid=True)`` (the ``fidelity`` CLI's code path, its
     default DataLoader workers) runs on the folder.

   Both compare with the same reference statistics (synthetic mu/sigma: FID values are
   meaningless with random weights; injected into torch-fidelity's cache as
   ``{name}-inception-v3-compat-stat-fid-2048.pt``). Reported: wall seconds, samples/s,
   peak RSS (the process and its children), and both FIDs (they differ by the 8-bit
   conversion: pytorch-pretrained-biggan floors ``(x+1)*128``, bigganctl rounds
   ``(x+1)*127.5``).

2. *Memory* (``--mem-n``, default ``256,2048``): peak RSS of ``bigganctl eval fid`` at each N,
   each in a fresh process; ``--mem-source images`` (default: an ``.npz`` of small images,
   the evaluation pipeline alone) or ``model`` (the random BigGAN-deep, end to end; slow on
   a CPU).

    python benchmarks/bench_eval.py                          # both parts, CPU
    python benchmarks/bench_eval.py --skip-compare --mem-n 256,2048 --json out/bench_eval.json
    python benchmarks/bench_eval.py --n 64 --skip-memory      # a quick look
    python benchmarks/bench_eval.py --compile --skip-memory   # adds bigganctl --compile (twice:
                                                              # cold, then from the compile cache)

Each measurement runs in its own subprocess; ``--threads`` sets torch's threads in each.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REF_NAME = "bench-ref"


def _peak_rss_mb() -> dict[str, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"peak_rss_mb": own, "peak_rss_children_mb": kids}


# ---------------------------------------------------------------------------------------
# Children: one measurement each, one JSON line on stdout

def child_bigganctl(cfg: dict) -> dict:
    import bigganctl

    t0 = time.perf_counter()
    res = bigganctl.evaluate(model=cfg["folder"], metrics=("fid",), n=cfg["n"], psi=cfg["psi"], seed=0,
                             classes="balanced", ref=cfg["ref_npz"], inception_weights=cfg["inception"],
                             device="cpu", batch_size=cfg["batch"], resume=False, progress=False,
                             force=True, compile=cfg.get("compile", False))
    wall = time.perf_counter() - t0
    return {"impl": "bigganctl" + (f"-compiled-{cfg['round']}" if cfg.get("compile") else ""), "fid": res["fid"],
            "wall_s": wall, "samples_per_s": cfg["n"] / wall, **_peak_rss_mb()}


def child_conventional(cfg: dict) -> dict:
    import torch
    import torch_fidelity
    from pytorch_pretrained_biggan import BigGAN, convert_to_images

    from bigganctl.noise import truncated_noise

    t0 = time.perf_counter()
    G = BigGAN.from_pretrained(cfg["folder"]).eval()
    n, bs, psi = cfg["n"], cfg["batch"], cfg["psi"]
    z = truncated_noise(list(range(n)), G.config.z_dim, psi, "deepmind")      # same z as bigganctl
    labels = torch.arange(n) % 1000                                            # same classes
    png = Path(cfg["tmp"]) / "conventional-png"
    png.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        for lo in range(0, n, bs):
            y = torch.nn.functional.one_hot(labels[lo:lo + bs], 1000).float()
            for i, im in enumerate(convert_to_images(G(z[lo:lo + bs], y, psi))):
                im.save(png / f"{lo + i:06d}.png")
    t_gen = time.perf_counter() - t0
    m = torch_fidelity.calculate_metrics(
        input1=str(png), input2=str(png), input2_cache_name=REF_NAME, cache_root=cfg["tf_cache"], fid=True,
        cuda=False, feature_extractor_weights_path=cfg["inception"], batch_size=cfg["batch"], verbose=False)
    wall = time.perf_counter() - t0
    shutil.rmtree(png, ignore_errors=True)
    return {"impl": "conventional", "fid": m["frechet_inception_distance"], "wall_s": wall,
            "samples_per_s": n / wall, "generate_and_write_s": t_gen, **_peak_rss_mb()}


def child_memory(cfg: dict) -> dict:
    import bigganctl

    source = dict(images=cfg["images_npz"]) if cfg["source"] == "images" else dict(model=cfg["folder"])
    t0 = time.perf_counter()
    res = bigganctl.evaluate(**source, metrics=("fid",), n=cfg["n"], ref=cfg["ref_npz"],
                             inception_weights=cfg["inception"], device="cpu", batch_size=cfg["batch"],
                             resume=False, progress=False, force=True)
    wall = time.perf_counter() - t0
    return {"n": cfg["n"], "source": cfg["source"], "fid": res["fid"], "wall_s": wall,
            "samples_per_s": cfg["n"] / wall, **_peak_rss_mb()}


CHILDREN = {"bigganctl": child_bigganctl, "conventional": child_conventional, "memory": child_memory}


# ---------------------------------------------------------------------------------------
# Parent

def _run_child(kind: str, cfg: dict, threads: int, env: dict) -> dict:
    p = subprocess.run([sys.executable, __file__, "--threads", str(threads), "--child", kind, json.dumps(cfg)],
                       env=env, capture_output=True, text=True)
    if p.returncode != 0:
        sys.stderr.write(p.stderr)
        raise SystemExit(f"{kind} child failed")
    return json.loads(p.stdout.strip().splitlines()[-1])


def _setup(tmp: Path, args) -> dict:
    import numpy as np
    import torch

    sys.path.insert(0, str(REPO))
    from bigganctl.metrics.features import extractor_id, weights_sha256
    from bigganctl.metrics.reference import Stats, write_stats
    from bigganctl.testing.inception import write_random_inception
    from bigganctl.models.config import DEEP_CONFIGS

    t0 = time.perf_counter()
    inception = write_random_inception(tmp / "inception-random.pth")
    # reference statistics: synthetic, full rank, labelled with the random extractor
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2048, 256)) * 0.02
    mu, sigma = 0.2 + 0.02 * rng.random(2048), a @ a.T / 256 + 1e-4 * np.eye(2048)
    ref_npz = tmp / "ref.npz"
    write_stats(ref_npz, Stats(mu, sigma, None, {"extractor_id": extractor_id(weights_sha256(inception)),
                                                 "count": 256, "source": "synthetic"}))
    tf_cache = tmp / "tf-cache"
    tf_cache.mkdir()
    torch.save({"mu": mu.astype(np.float32), "sigma": sigma},
               tf_cache / f"{REF_NAME}-inception-v3-compat-stat-fid-2048.pt")
    cfg = {"inception": str(inception), "ref_npz": str(ref_npz), "tf_cache": str(tf_cache), "tmp": str(tmp),
           "psi": args.psi, "batch": args.batch}
    if not args.skip_compare or args.mem_source == "model":
        from bigganctl.testing import hf

        folder = tmp / f"biggan-deep-{args.res}"
        hf.write_random_checkpoint(folder, DEEP_CONFIGS[args.res], 0)
        cfg["folder"] = str(folder)
    if not args.skip_memory and args.mem_source == "images":
        n = max(args.mem_n)
        g = torch.Generator().manual_seed(1)
        x = torch.rand(n, 3, 4, 4, generator=g) * 255
        x = torch.nn.functional.interpolate(x, size=32, mode="bilinear").round().clamp(0, 255).to(torch.uint8)
        np.savez(tmp / "images.npz", arr_0=x.permute(0, 2, 3, 1).numpy())
        cfg["images_npz"] = str(tmp / "images.npz")
    print(f"setup (random weights, reference) {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return cfg


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=256, help="samples for the side-by-side comparison")
    ap.add_argument("--res", type=int, default=128, choices=(128, 256, 512))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--psi", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--mem-n", default="256,2048", help="sample counts for the memory comparison")
    ap.add_argument("--mem-source", choices=("images", "model"), default="images")
    ap.add_argument("--skip-compare", action="store_true")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    ap.add_argument("--compile", action="store_true", help="add bigganctl compiled (cold, then warm cache)")
    ap.add_argument("--child", nargs=2, metavar=("KIND", "CONFIG"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        import torch

        torch.set_num_threads(args.threads)
        print(json.dumps(CHILDREN[args.child[0]](json.loads(args.child[1]))))
        return 0
    args.mem_n = [int(x) for x in args.mem_n.split(",")]

    import torch

    result: dict = {"device": "cpu", "threads": args.threads, "torch": torch.__version__,
                    "python": platform.python_version(), "cpu": platform.processor() or platform.machine()}
    with tempfile.TemporaryDirectory(prefix="bigganctl-bench-eval-") as tmp_s:
        tmp = Path(tmp_s)
        cfg = _setup(tmp, args)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
               "BIGGANCTL_OFFLINE": "1", "BIGGANCTL_HOME": str(tmp / "home"), "OMP_NUM_THREADS": str(args.threads)}
        if not args.skip_compare:
            rows = [_run_child(kind, {**cfg, "n": args.n}, args.threads, env)
                    for kind in ("bigganctl", "conventional")]
            if args.compile:       # wall time includes compilation: first cold, then cached
                rows += [_run_child("bigganctl", {**cfg, "n": args.n, "compile": True, "round": r},
                                    args.threads, env) for r in ("cold", "warm")]
            result["compare"] = {"model": f"biggan-deep-{args.res}", "n": args.n, "batch": args.batch,
                                 "psi": args.psi, "results": rows}
            print(f"\nFID over {args.n} samples of random biggan-deep-{args.res}, fp32, CPU ({args.threads} "
                  f"threads), batch {args.batch}")
            print(f"{'':26}{'samples/s':>10}{'wall s':>9}{'peak RSS MiB':>14}{'(children)':>12}{'FID':>12}")
            for r in rows:
                print(f"{r['impl']:26}{r['samples_per_s']:10.2f}{r['wall_s']:9.1f}{r['peak_rss_mb']:14.0f}"
                      f"{r['peak_rss_children_mb']:12.0f}{r['fid']:12.5f}")
            for r in rows[:1] + rows[2:]:
                print(f"speed-up {r['impl']} {r['samples_per_s'] / rows[1]['samples_per_s']:.2f}x")
        if not args.skip_memory:
            rows = [_run_child("memory", {**cfg, "n": n, "source": args.mem_source}, args.threads, env)
                    for n in args.mem_n]
            base = rows[0]["peak_rss_mb"]
            for r in rows:
                r["rss_vs_first"] = r["peak_rss_mb"] / base
            result["memory"] = {"source": args.mem_source, "results": rows}
            print(f"\npeak RSS of eval fid ({args.mem_source}), CPU")
            print(f"{'N':>8}{'peak RSS MiB':>14}{'vs first':>10}{'samples/s':>11}")
            for r in rows:
                print(f"{r['n']:8d}{r['peak_rss_mb']:14.0f}{r['rss_vs_first']:10.3f}{r['samples_per_s']:11.2f}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
