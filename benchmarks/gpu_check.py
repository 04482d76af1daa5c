"""GPU checks and benchmarks in one run (for a lent CUDA machine; see gpu_check.sh).

Prints one table per check and writes everything to $OUT/gpu_check.json (or ./out/).

1. Correctness on CUDA: random BigGAN-deep 128/256/512 written in the HF format; bigganctl
   on CUDA fp32 vs bigganctl on CPU fp32 and vs pytorch-pretrained-biggan on CUDA (same
   z, class, psi): max |diff|. bf16 / fp16: max |diff| vs fp32 and 8-bit agreement.
2. Batch-size independence on CUDA: uint8 pixels for batch 1 vs 7 vs 64.
3. Generation throughput, images/s: bigganctl vs the reference, fp32 (and bigganctl bf16,
   and torch.compile), same weights, same batch, side by side.
4. Evaluation throughput: samples/s of bigganctl.evaluate (generator -> Inception
   features -> FID/IS) with a random Inception file, N=2048, and its peak GPU memory.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bigganctl.formats import hf  # noqa: E402
from bigganctl.generate import iter_uint8  # noqa: E402
from bigganctl.loader import load_generator  # noqa: E402
from bigganctl.models.config import DEEP_CONFIGS  # noqa: E402
from bigganctl.sampling import truncated_noise  # noqa: E402

OUT = Path(os.environ.get("OUT") or REPO / "out")
RESULTS: dict = {}


def table(title: str, rows: list[dict]) -> None:
    print(f"\n== {title}")
    if not rows:
        return
    cols = list(rows[0])
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(f"{r[c]:.4g}" if isinstance(r[c], float) else str(r[c]) for c in cols))
    RESULTS[title] = rows
    sys.stdout.flush()


def timed(fn, reps: int, *args) -> float:
    """Mean seconds of ``fn(*args)`` over ``reps`` calls after one warm-up call."""
    fn(*args)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn(*args)
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / reps


def main() -> None:
    assert torch.cuda.is_available(), "no CUDA device"
    dev = torch.device("cuda")
    print(torch.__version__, torch.cuda.get_device_name(0))
    torch.backends.cudnn.benchmark = False
    from pytorch_pretrained_biggan import BigGAN

    tmp = Path(tempfile.mkdtemp())
    folders = {}
    for res in (128, 256, 512):
        folders[res] = tmp / f"deep{res}"
        hf.write_random_checkpoint(folders[res], DEEP_CONFIGS[res], seed=0)

    # 1. correctness
    rows = []
    for res, folder in folders.items():
        G_gpu = load_generator(str(folder), device="cuda", dtype="fp32", progress=False)
        G_cpu = load_generator(str(folder), device="cpu", dtype="fp32", progress=False)
        ref = BigGAN.from_pretrained(str(folder)).eval().to(dev)
        z = truncated_noise([0, 1], G_gpu.z_dim, 0.5, "deepmind")
        y = torch.tensor([207, 1])
        with torch.no_grad():
            a = G_gpu(z, y, 0.5).cpu()
            b = G_cpu(z, y, 0.5)
            c = ref(z.to(dev), torch.nn.functional.one_hot(y, 1000).float().to(dev), 0.5).float().cpu()
            row = {"res": res, "cuda_vs_cpu": (a - b).abs().max().item(), "cuda_vs_reference": (a - c).abs().max().item()}
            for name in ("bf16", "fp16"):
                G_h = load_generator(str(folder), device="cuda", dtype=name, progress=False)
                h = G_h(z, y, 0.5).cpu()
                row[f"{name}_vs_fp32"] = (h - a).abs().max().item()
                row[f"{name}_nan"] = bool(torch.isnan(h).any())
        rows.append(row)
        del G_gpu, ref
        torch.cuda.empty_cache()
    table("correctness (max |diff|, psi 0.5)", rows)

    # 2. batch-size independence
    G = load_generator(str(folders[128]), device="cuda", dtype="fp32", progress=False)
    n = 64
    labels = torch.arange(n) * 7 % 1000
    seeds = list(range(n))
    outs = {}
    for bs in (1, 7, 64):
        outs[bs] = torch.cat([x for _, x in iter_uint8(G, labels, seeds, 0.5, batch_size=bs)])
    rows = []
    for bs in (7, 64):
        d = (outs[bs].int() - outs[1].int()).abs()
        rows.append({"batch": bs, "max_levels": int(d.max()), "frac_differing": float((d > 0).float().mean())})
    table("batch-size independence vs batch 1 (uint8, 64 images, deep-128)", rows)

    # 3. generation throughput
    rows = []
    for res, bs in ((128, 64), (256, 32), (512, 16)):
        folder = folders[res]
        z = truncated_noise(list(range(bs)), 128, 0.5, "deepmind").to(dev)
        y = torch.randint(0, 1000, (bs,))
        onehot = torch.nn.functional.one_hot(y, 1000).float().to(dev)
        ref = BigGAN.from_pretrained(str(folder)).eval().to(dev)
        with torch.no_grad():
            t_ref = timed(ref, 5, z, onehot, 0.5)
        del ref
        G32 = load_generator(str(folder), device="cuda", dtype="fp32", progress=False)
        G16 = load_generator(str(folder), device="cuda", dtype="bf16", progress=False)
        yd = y.to(dev)
        with torch.inference_mode():
            t32 = timed(G32, 5, z, yd, 0.5)
            t16 = timed(G16, 5, z, yd, 0.5)
            try:
                t_c = timed(torch.compile(G16), 5, z, yd, 0.5)
            except Exception as e:  # report, don't fail the whole run
                print("compile failed:", repr(e)[:300])
                t_c = float("nan")
        rows.append({"res": res, "batch": bs, "ref_fp32_img_s": bs / t_ref, "ours_fp32_img_s": bs / t32,
                     "speedup_fp32": t_ref / t32, "ours_bf16_img_s": bs / t16, "ours_bf16_compiled_img_s": bs / t_c})
        del G32, G16
        torch.cuda.empty_cache()
    table("generation throughput (images/s, CUDA)", rows)

    # 4. evaluation throughput
    from bigganctl.api.evaluate import evaluate
    from bigganctl.metrics.testing import write_random_inception

    w = write_random_inception(tmp / "inception.pth")
    rows = []
    for N in (2048,):
        torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        # FID needs a reference: evaluate IS only here (features and the generator are the cost).
        res = evaluate(model=str(folders[128]), metrics=("is",), n=N, psi=1.0, inception_weights=str(w),
                       device="cuda", dtype="fp32", batch_size=128, resume=False, progress=False)
        dt = time.perf_counter() - t0
        rows.append({"n": N, "seconds": dt, "samples_per_s": N / dt,
                     "peak_gpu_mib": torch.cuda.max_memory_allocated() / 2**20, "is_mean": res["is_mean"]})
    table("evaluation throughput (deep-128, IS, fp32 generator, CUDA)", rows)

    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "gpu_check.json").write_text(json.dumps(RESULTS, indent=2))
    print(f"\nwrote {OUT / 'gpu_check.json'}")


if __name__ == "__main__":
    main()
