"""Precision/recall and sFID cost, and how far ADM's float16 distances move P/R (issue 19).

1. *P/R maths* (``--n``, default ``2000,10000``; ``--m`` reference features, default 10000):
   :func:`bigganctl.metrics.manifold.precision_recall` on synthetic pool_3-like features
   (2048-d, non-negative, ``relu`` of a 64-d latent through a random map: squared norms ~500,
   nearest-neighbour distances ~10 % of them, as real pool_3 features), float32 and ADM's
   float16 distances. Each run in a fresh process: wall seconds and peak RSS. Reported: both
   P/R pairs, their difference, and a projection to N = 50000 (the cost is ~ N² + N·M + M²
   dot products of 2048-d rows).
2. *The extraction pass* (``--eval-n``, default 24): ``bigganctl.evaluate(images=NPZ)`` on
   random Inception weights, ``metrics=("fid",)`` and ``("fid", "sfid")``: the extra cost of
   sFID's spatial accumulator per image (``samples_per_second`` of the extraction: loading,
   the Fréchet distances and other fixed costs excluded). ``eval all`` at N is then projected
   as N x (seconds per image of the pass) + the P/R maths of part 1.

    python benchmarks/bench_pr.py --json out/bench_pr.json
    python benchmarks/bench_pr.py --n 2000 --m 2000 --eval-n 8      # a quick look

The numbers of this machine go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def features(n: int, seed: int, shift: float):
    import torch

    g = torch.Generator().manual_seed(1234)            # the same map for both sets
    w = torch.randn(64, 2048, generator=g) * 0.08
    b = torch.randn(2048, generator=g) * 0.2 + 0.1
    z = torch.randn(n, 64, generator=torch.Generator().manual_seed(seed)) * (1 + shift) + shift
    return torch.relu(z @ w + b)


def child_pr(n: int, m: int, distances: str) -> dict:
    from bigganctl.metrics.manifold import precision_recall

    s, r = features(n, 1, 0.15), features(m, 2, 0.0)
    t = time.perf_counter()
    pr = precision_recall(s, r, distances=distances)
    sec = time.perf_counter() - t
    return {"n": n, "m": m, "distances": distances, "precision": pr.precision, "recall": pr.recall,
            "seconds": round(sec, 3), "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "sq_norm_mean": float((s * s).sum(1).mean())}


def child_eval(npz: str, weights: str, metrics: str) -> dict:
    import bigganctl

    t = time.perf_counter()
    res = bigganctl.evaluate(images=npz, metrics=metrics.split(","), ref=npz + ".ref.npz", inception_weights=weights,
                             device="cpu", progress=False, resume=False, force=True, warn=lambda m: None)
    return {"metrics": metrics, "n": res["n"], "seconds": round(time.perf_counter() - t, 3),
            "extraction_img_per_s": res["samples_per_second"],
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def run_child(*args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, env=env,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def eval_inputs(d: Path, n: int) -> tuple[str, str]:
    import numpy as np

    from bigganctl.testing.inception import write_random_inception

    rng = np.random.default_rng(0)
    npz = d / "s.npz"
    np.savez(npz, arr_0=rng.integers(0, 256, size=(n, 64, 64, 3), dtype=np.uint8))
    a = rng.normal(size=(2023, 8)) * 0.1
    np.savez(str(npz) + ".ref.npz", mu=np.zeros(2048), sigma=np.eye(2048), mu_s=np.zeros(2023),
             sigma_s=a @ a.T + np.eye(2023) * 1e-3)
    return str(npz), str(write_random_inception(d / "inception.pth"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", default="2000,10000")
    ap.add_argument("--m", type=int, default=10000)
    ap.add_argument("--eval-n", type=int, default=24)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--child", nargs="+")
    a = ap.parse_args()
    if a.child:
        kind, *rest = a.child
        res = child_pr(int(rest[0]), int(rest[1]), rest[2]) if kind == "pr" else child_eval(*rest)
        print(json.dumps(res))
        return
    import torch

    report: dict = {"threads": torch.get_num_threads(), "cpu": os.cpu_count(), "pr": [], "eval": []}
    for n in [int(x) for x in a.n.split(",")]:
        for dist in ("fp32", "fp16"):
            r = run_child("pr", str(n), str(a.m), dist)
            report["pr"].append(r)
            print(json.dumps(r), file=sys.stderr)
    big = max(report["pr"], key=lambda r: (r["n"], r["distances"] == "fp32"))
    work = lambda n, m: n * n + n * m + m * m                       # noqa: E731
    report["pr_projected_50k_s"] = round(big["seconds"] * work(50_000, a.m) / work(big["n"], big["m"]), 1)
    with tempfile.TemporaryDirectory() as tmp:
        npz, weights = eval_inputs(Path(tmp), a.eval_n)
        for metrics in ("fid", "fid,sfid"):
            r = run_child("eval", npz, weights, metrics)
            report["eval"].append(r)
            print(json.dumps(r), file=sys.stderr)
    per_img = {r["metrics"]: 1.0 / r["extraction_img_per_s"] for r in report["eval"]}   # fixed costs excluded
    pr_s = {r["n"]: r["seconds"] for r in report["pr"] if r["distances"] == "fp32"}
    pr_s[50_000] = report["pr_projected_50k_s"]
    report["eval_all_projected_s"] = {n: round(n * per_img["fid,sfid"] + s, 1) for n, s in sorted(pr_s.items())}
    report["fid_alone_projected_s"] = {n: round(n * per_img["fid"], 1) for n in sorted(pr_s)}
    text = json.dumps(report, indent=2)
    print(text)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(text)


if __name__ == "__main__":
    main()
