"""GPU checks and benchmarks in one run (for a lent CUDA machine; see gpu_check.sh).

Prints one table per check and writes everything to $OUT/gpu_check.json (or ./out/).

1. Correctness on CUDA: random BigGAN-deep 128/256/512 written in the HF format; bigganctl
   on CUDA fp32 vs bigganctl on CPU fp32 and vs pytorch-pretrained-biggan on CUDA (same
   z, class, psi): max |diff|. bf16 / fp16: max |diff| vs fp32 and 8-bit agreement.
2. Batch-size independence on CUDA: uint8 pixels for batch 1 vs 7 vs 64.
3. Generation, images/s, deep-128/256/512: eager / compiled x fp32 / bf16 (compile time
   shown), then deep-128 bf16 under the CUDA-graph modes reduce-overhead and max-autotune;
   NCHW vs NHWC (channels_last) for the generator and the extractor on CUDA.
4. End to end, deep-128: FID-10k + IS with bf16 + compile (cold, then warm), bf16 and fp32
   eager (their FID difference on the same seeds), the projected FID-50k time; FID-2k with
   TF32 on vs off for the features; the conventional pipeline (pytorch-pretrained-biggan
   -> PNG -> torch-fidelity) at FID-2k. Random Inception weights (no download on the GPU
   machine): the FIDs are only comparable with each other.

Sections are skipped when the run nears ``GPU_CHECK_BUDGET_S`` (360 s) so the whole call
stays under 8 minutes.
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

from bigganctl.testing import hf  # noqa: E402
from bigganctl.generate import iter_uint8  # noqa: E402
from bigganctl.loader import load_generator  # noqa: E402
from bigganctl.models.config import DEEP_CONFIGS  # noqa: E402
from bigganctl.sampling import truncated_noise  # noqa: E402

OUT = Path(os.environ.get("OUT") or REPO / "out")
RESULTS: dict = {}
T0 = time.perf_counter()
#: sections are skipped once the run is past these fractions of the budget (gpu_check.sh: <= 8 min)
BUDGET_S = float(os.environ.get("GPU_CHECK_BUDGET_S", "360"))


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


def gen_rate(G, bs: int, reps: int = 5) -> tuple[float, float]:
    """(images/s, first-call seconds) of uint8 generation on the device, batch ``bs``."""
    labels = torch.randint(0, 1000, (bs * (reps + 1),), generator=torch.Generator().manual_seed(0))
    seeds = list(range(bs * (reps + 1)))
    t0 = time.perf_counter()
    for _ in iter_uint8(G, labels[:bs], seeds[:bs], 0.5, batch_size=bs, on_device=True):
        pass
    torch.cuda.synchronize()
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in iter_uint8(G, labels[bs:], seeds[bs:], 0.5, batch_size=bs, on_device=True):
        pass
    torch.cuda.synchronize()
    return bs * reps / (time.perf_counter() - t0), warm


def guarded(fallback, fn, *args, **kw):
    """``fn(*args, **kw)``, or ``fallback`` after printing the error: one failure must not
    end the run."""
    try:
        return fn(*args, **kw)
    except Exception as e:  # noqa: BLE001
        print("FAILED:", repr(e)[:400], flush=True)
        return fallback


def throughput(folders: dict) -> None:
    from bigganctl.compiling import compiled_generator

    rows = []
    for res, bs in ((128, 256), (256, 128), (512, 32)):
        row: dict = {"res": res, "batch": bs}
        for dt in ("fp32", "bf16"):
            G = load_generator(str(folders[res]), device="cuda", dtype=dt, progress=False)
            row[f"{dt}_eager"], _ = gen_rate(G, bs)
            if time.perf_counter() - T0 < BUDGET_S * 0.45:
                row[f"{dt}_compiled"], row[f"{dt}_compile_s"] = guarded(
                    (float("nan"),) * 2, gen_rate, compiled_generator(G, "default"), bs)
            del G
            torch.cuda.empty_cache()
        rows.append(row)
        print(row, flush=True)
    table("generation (images/s, uint8 on the device; compile_s = first batch incl. compilation)", rows)
    rows = []
    G = load_generator(str(folders[128]), device="cuda", dtype="bf16", progress=False)
    for mode in ("reduce-overhead", "max-autotune"):
        if time.perf_counter() - T0 > BUDGET_S * 0.55:
            break
        ips, warm = guarded((float("nan"),) * 2, gen_rate, compiled_generator(G, mode), 256)
        rows.append({"mode": mode, "images_per_s": ips, "compile_s": warm})
    table("deep-128 bf16, batch 256: CUDA-graph compile modes", rows)


def layouts(folder: Path) -> None:
    """NCHW vs NHWC (channels_last) on CUDA: the CPU runs both networks NHWC (measured
    faster there); on CUDA they stay NCHW until this says otherwise."""
    from bigganctl.metrics.features import build_extractor

    rows = []
    for dt in ("fp32", "bf16"):
        G = load_generator(str(folder), device="cuda", dtype=dt, progress=False)
        row: dict = {"net": f"deep-128 {dt}, batch 256"}
        for fmt, name in ((torch.contiguous_format, "nchw"), (torch.channels_last, "nhwc")):
            G.to(memory_format=fmt)
            row[f"{name}_images_per_s"], _ = gen_rate(G, 256)
        rows.append(row)
        del G
    net = build_extractor().cuda()
    x = torch.randint(0, 256, (256, 3, 128, 128), dtype=torch.uint8, device="cuda")
    row = {"net": "inception fp32, batch 256"}
    with torch.inference_mode():
        for fmt, name in ((torch.contiguous_format, "nchw"), (torch.channels_last, "nhwc")):
            net.to(memory_format=fmt)
            row[f"{name}_images_per_s"] = 256 / timed(net, 5, x)
    rows.append(row)
    torch.cuda.empty_cache()
    table("memory layout on CUDA, eager (images/s)", rows)


def end_to_end(folder: Path, tmp: Path) -> None:
    """FID-10k + IS of deep-128 (bf16 + compile) end to end, bf16 vs fp32 FID on the same
    seeds, TF32 on vs off for the features, and the conventional pipeline at FID-2k."""
    import numpy as np

    from bigganctl.api.evaluate import evaluate
    from bigganctl.api.stats import compute_stats
    from bigganctl.testing.inception import write_random_inception

    w = str(write_random_inception(tmp / "inception.pth"))
    G = load_generator(str(folder), device="cuda", dtype="fp32", progress=False)
    ref_imgs = torch.cat([x for _, x in iter_uint8(G, torch.arange(2000) % 1000, list(range(10**6, 10**6 + 2000)),
                                                   1.0, batch_size=250)])
    np.savez(tmp / "ref_images.npz", arr_0=ref_imgs.permute(0, 2, 3, 1).numpy())
    ref = tmp / "ref.npz"
    compute_stats(tmp / "ref_images.npz", ref, inception_weights=w, device="cuda", progress=False)
    kw = dict(model=str(folder), metrics=("fid", "is"), ref=str(ref), inception_weights=w, device="cuda",
              resume=False, progress=False, force=True)
    rows = []
    for name, n, extra in (("bf16+compile", 10000, dict(dtype="bf16", compile=True)),
                           ("bf16+compile (warm)", 10000, dict(dtype="bf16", compile=True)),
                           ("bf16 eager", 10000, dict(dtype="bf16")),
                           ("fp32 eager", 10000, dict(dtype="fp32"))):
        if time.perf_counter() - T0 > BUDGET_S * 0.85:
            break
        torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        r = guarded(None, evaluate, n=n, **kw, **extra)
        if r is None:
            continue
        dt = time.perf_counter() - t0
        rows.append({"run": name, "n": n, "seconds": dt, "samples_per_s": n / dt, "fid": r["fid"],
                     "is_mean": r["is_mean"], "batch": r["batch_size"], "fid50k_projected_s": 50000 * dt / n,
                     "peak_gpu_mib": torch.cuda.max_memory_allocated() / 2**20})
    fids = {r["run"]: r["fid"] for r in rows}
    if "bf16 eager" in fids and "fp32 eager" in fids:
        print(f"FID bf16 - fp32 (same seeds, 10k): {fids['bf16 eager'] - fids['fp32 eager']:+.5f} "
              f"(relative {(fids['bf16 eager'] - fids['fp32 eager']) / fids['fp32 eager']:+.2e})")
    table("end to end, deep-128 (FID vs a 2k reference, random Inception weights)", rows)
    if time.perf_counter() - T0 < BUDGET_S * 0.9:     # TF32 for the features: does FID move?
        import bigganctl.metrics.features as F

        orig = F.InceptionFeatures.__init__

        def tf32_on(self, *a, **k):
            orig(self, *a, **k)
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True

        F.InceptionFeatures.__init__ = tf32_on
        on = evaluate(n=2000, dtype="fp32", **kw)["fid"]
        F.InceptionFeatures.__init__ = orig
        off = evaluate(n=2000, dtype="fp32", **kw)["fid"]
        table("TF32 for the features (FID-2k, fp32 generator)",
              [{"tf32_off": off, "tf32_on": on, "relative": (on - off) / off}])
    if time.perf_counter() - T0 < BUDGET_S:
        guarded(None, conventional_fid2k, folder, tmp, w)


def conventional_fid2k(folder: Path, tmp: Path, inception: str) -> None:
    """pytorch-pretrained-biggan generates 2k PNGs, torch-fidelity computes FID (+ IS)."""
    import torch_fidelity
    from pytorch_pretrained_biggan import BigGAN, convert_to_images

    t0 = time.perf_counter()
    G = BigGAN.from_pretrained(str(folder)).eval().cuda()
    png, ref_png = tmp / "conv_png", tmp / "conv_ref_png"
    for d, base in ((png, 0), (ref_png, 10**6)):
        d.mkdir()
        with torch.no_grad():
            for lo in range(0, 2000, 100):
                z = truncated_noise(list(range(base + lo, base + lo + 100)), 128, 1.0, "deepmind").cuda()
                y = torch.nn.functional.one_hot(torch.arange(lo, lo + 100) % 1000, 1000).float().cuda()
                for i, im in enumerate(convert_to_images(G(z, y, 1.0).cpu())):
                    im.save(d / f"{lo + i:06d}.png")
    m = torch_fidelity.calculate_metrics(input1=str(png), input2=str(ref_png), fid=True, isc=True, cuda=True,
                                         feature_extractor_weights_path=inception, verbose=False)
    dt = time.perf_counter() - t0
    table("conventional pipeline, FID-2k (reference generates PNGs, torch-fidelity; incl. 2k reference PNGs)",
          [{"n": 2000, "seconds": dt, "samples_per_s": 4000 / dt, "fid": m["frechet_inception_distance"],
            "is_mean": m["inception_score_mean"]}])


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

    # 3. generation throughput: eager / compiled x fp32 / bf16, and CUDA-graph modes
    throughput(folders)
    del G
    torch.cuda.empty_cache()
    if time.perf_counter() - T0 < BUDGET_S * 0.6:
        guarded(None, layouts, folders[128])

    # 4. end to end: FID-10k + IS (bf16 + compile), bf16 vs fp32 FID, TF32, conventional FID-2k
    end_to_end(folders[128], tmp)

    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "gpu_check.json").write_text(json.dumps(RESULTS, indent=2))
    print(f"\nwrote {OUT / 'gpu_check.json'}")


if __name__ == "__main__":
    main()
