"""The sections of benchmarks/gpu_check.py (one function each: ``section_<name>(ctx, check)``).

Every section works on CUDA and, for the rehearsal (``--cpu``), on the CPU with tiny
BigGAN-deep models in the same HF format, small N and dynamo's capture-only backend.
"""

from __future__ import annotations

import gc
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import bigganctl
from bigganctl.runtime import compiling
from bigganctl.weights import loader
from bigganctl.api.bench import generation_throughput
from bigganctl.testing import hf
from bigganctl.generate import batch_size_for, iter_uint8
from bigganctl.models.config import DEEP_CONFIGS, BigGANDeepConfig
from bigganctl.runtime.device import default_batch_size

RESOLUTIONS = (128, 256, 512)
#: rehearsal stand-ins for deep-128/256/512: 8, 16 and 32 px, channel width 8
_TINY_LAYERS = {128: ((False, 16, 16), (True, 16, 8), (False, 8, 4), (False, 4, 2), (False, 2, 1)),
                256: ((False, 16, 16), (True, 16, 8), (False, 8, 4), (True, 4, 2), (False, 2, 1)),
                512: ((True, 16, 16), (True, 16, 8), (False, 8, 4), (True, 4, 2), (False, 2, 1))}
_TINY_RES = {128: 8, 256: 16, 512: 32}


class Context:
    """Device, sizes, the random checkpoints (written when first needed), the random
    Inception weights and the reference statistics, shared by the sections."""

    def __init__(self, check, *, cpu: bool, inductor: bool = False):
        self.check, self.cpu = check, cpu
        self.device = torch.device("cpu" if cpu else "cuda")
        if cpu and not inductor:
            compiling.BACKEND = "eager"          # dynamo capture: the code path in seconds
        self.tmp = Path(tempfile.mkdtemp(prefix="gpu_check_"))
        self.n = (dict(ref=10, dtype=10, tf32=10, fid=10, cli=10, oom=4, batch_cap=2) if cpu else
                  dict(ref=2000, dtype=5000, tf32=2000, fid=10000, cli=1000, oom=128, batch_cap=256))
        self._folders: dict[int, Path] = {}
        self._inception: str | None = None
        self._ref: str | None = None

    def config(self, res: int) -> BigGANDeepConfig:
        if not self.cpu:
            return DEEP_CONFIGS[res]
        return BigGANDeepConfig(output_dim=_TINY_RES[res], channel_width=8, attention_layer_position=1,
                                layers=_TINY_LAYERS[res])

    def folder(self, res: int) -> Path:
        if res not in self._folders:
            self._folders[res] = hf.write_random_checkpoint(self.tmp / f"deep{res}", self.config(res), seed=0)
        return self._folders[res]

    def load(self, res: int, dtype: str):
        return loader.load_generator(str(self.folder(res)), device=self.device, dtype=dtype, progress=False)

    def free(self) -> None:
        """Drop the loader's cached models (and their compiled wrappers) and free memory,
        so that the next automatic batch size does not depend on what ran before."""
        loader.clear_cache()
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def inception(self) -> str:
        if self._inception is None:
            from bigganctl.testing.inception import write_random_inception

            self._inception = str(write_random_inception(self.tmp / "inception.pth"))
        return self._inception

    def ref(self) -> str:
        """Reference statistics of ``n['ref']`` fp32 deep-128 images (seeds from 10**6)."""
        if self._ref is None:
            from bigganctl.api.stats import compute_stats

            G = self.load(128, "fp32")
            n = self.n["ref"]
            imgs = torch.cat([x for _, x in iter_uint8(G, torch.arange(n) % G.num_classes,
                                                       list(range(10**6, 10**6 + n)), 1.0)])
            np.savez(self.tmp / "ref_images.npz", arr_0=imgs.permute(0, 2, 3, 1).numpy())
            del G, imgs
            self.free()
            compute_stats(self.tmp / "ref_images.npz", self.tmp / "ref.npz", inception_weights=self.inception(),
                          device=str(self.device), progress=False, resume=False)
            self._ref = str(self.tmp / "ref.npz")
        return self._ref

    def evaluate(self, n: int, dtype: str, **kw) -> dict:
        from bigganctl.api.evaluate import evaluate

        return evaluate(model=str(self.folder(128)), metrics=("fid", "is"), ref=self.ref(), n=n, dtype=dtype,
                        inception_weights=self.inception(), device=str(self.device), resume=False,
                        progress=False, force=True, **kw)

    def time_left(self) -> float:
        """Seconds until the running section's hard limit."""
        return self.check.deadline - time.monotonic()

    def close(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


# ----------------------------------------------------------------------------- 1. environment

def section_env(ctx: Context, check) -> None:
    from bigganctl.runtime.compiling import cache_dir
    from bigganctl.metrics.features import tf32_flags

    v = check.value
    v("python", platform.python_version())
    v("torch", torch.__version__)
    v("torch_cuda", torch.version.cuda)
    v("cudnn", torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None)
    for mod in ("triton", "torchvision", "torch_fidelity"):
        try:
            v(mod, __import__(mod).__version__)
        except Exception as e:  # noqa: BLE001
            v(mod, f"unavailable ({type(e).__name__})")
    v("bigganctl", f"{getattr(bigganctl, '__version__', '?')} from {Path(bigganctl.__file__).parent}")
    v("tf32", tf32_flags())
    v("cudnn_benchmark", torch.backends.cudnn.benchmark)
    v("inductor_cache", cache_dir())
    if ctx.device.type == "cuda":
        free, total = torch.cuda.mem_get_info()
        v("gpu", torch.cuda.get_device_name(0))
        v("capability", ".".join(map(str, torch.cuda.get_device_capability(0))))
        v("free_gib", free / 2**30)
        v("total_gib", total / 2**30)
    v("auto_batch", {**{str(r): default_batch_size(ctx.device, r) for r in RESOLUTIONS},
                     "features": default_batch_size(ctx.device, None)})
    t0 = time.perf_counter()
    for res in RESOLUTIONS:                    # the random checkpoints the later sections load
        ctx.folder(res)
    v("checkpoints_written_s", time.perf_counter() - t0)


# ----------------------------------------------------------------------------- 2. eager

def section_eager(ctx: Context, check) -> None:
    _correctness(ctx, check)
    rows = []
    for res in RESOLUTIONS:
        row: dict = {"res": res}
        rows.append(row)
        for dt in ("fp32", "bf16"):
            G = ctx.load(res, dt)
            bs = batch_size_for(G, None)
            r = generation_throughput(G, n=3 * bs, batch_size=bs, psi=0.5)
            row["batch"] = bs
            row[f"{dt}_images_per_s"] = r["images_per_s"]
            del G
            ctx.free()
            check.table("eager generation, images/s (uint8 to the host; automatic batch)", rows)


def _correctness(ctx: Context, check) -> None:
    """deep-128 on the device vs the CPU and vs pytorch-pretrained-biggan; half precision vs fp32."""
    from bigganctl.noise import truncated_noise

    folder = ctx.folder(128)
    G = ctx.load(128, "fp32")
    z = truncated_noise([0, 1], G.z_dim, 0.5, "deepmind")
    y = torch.tensor([207, 1]) % G.num_classes
    row: dict = {"res": 128}
    cpu = loader.load_generator(str(folder), device="cpu", dtype="fp32", progress=False)
    halves = {name: ctx.load(128, name) for name in ("bf16", "fp16")}     # loaded outside inference mode
    with torch.inference_mode():
        a = G(z, y, 0.5).cpu()
        row["device_vs_cpu"] = (a - cpu(z, y, 0.5)).abs().max().item()
        for name, H in halves.items():
            h = H(z, y, 0.5).cpu()
            row[f"{name}_vs_fp32"] = (h - a).abs().max().item()
            row[f"{name}_finite"] = bool(torch.isfinite(h).all())
    del cpu, halves
    try:
        from pytorch_pretrained_biggan import BigGAN
    except ImportError:
        BigGAN = None
    if BigGAN is not None:
        ref = BigGAN.from_pretrained(str(folder)).eval().to(ctx.device)
        with torch.no_grad():
            onehot = torch.nn.functional.one_hot(y, G.num_classes).float().to(ctx.device)
            c = ref(z.to(ctx.device), onehot, 0.5).float().cpu()
        row["device_vs_reference"] = (a - c).abs().max().item()
        del ref
    del G
    ctx.free()
    check.table("correctness, max |diff| (psi 0.5)", [row])


# ----------------------------------------------------------------------------- 3-5. FID

def section_fid_dtype(ctx: Context, check) -> None:
    rows = []
    for dt in ("fp32", "bf16"):
        t0 = time.perf_counter()
        r = ctx.evaluate(ctx.n["dtype"], dt)
        rows.append({"dtype": dt, "n": ctx.n["dtype"], "fid": r["fid"], "is_mean": r["is_mean"],
                     "seconds": time.perf_counter() - t0})
        check.table("FID + IS, bf16 vs fp32 generator (same seeds)", rows)
        ctx.free()
    a, b = rows[0]["fid"], rows[1]["fid"]
    check.value("fid_bf16_minus_fp32", b - a)
    check.value("fid_relative", (b - a) / a)


def section_tf32(ctx: Context, check) -> None:
    from bigganctl.metrics.features import InceptionFeatures

    rows = []
    try:
        for allowed in (False, True):
            InceptionFeatures.allow_tf32 = allowed        # the extractor only; generator unchanged
            r = ctx.evaluate(ctx.n["tf32"], "fp32")
            rows.append({"tf32_features": allowed, "n": ctx.n["tf32"], "fid": r["fid"], "is_mean": r["is_mean"]})
            check.table("TF32 in the feature extractor (fp32 generator)", rows)
    finally:
        InceptionFeatures.allow_tf32 = False
        ctx.free()
    check.value("fid_relative_tf32_on_vs_off", (rows[1]["fid"] - rows[0]["fid"]) / rows[0]["fid"])


def section_fid10k(ctx: Context, check) -> None:
    if ctx.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    n = ctx.n["fid"]
    t0 = time.perf_counter()
    r = ctx.evaluate(n, "bf16")
    dt = time.perf_counter() - t0
    row = {"n": n, "seconds": dt, "samples_per_s": n / dt, "fid": r["fid"], "is_mean": r["is_mean"],
           "batch": r.get("batch_size"), "fid50k_projected_s": 50000 * dt / n}
    if ctx.device.type == "cuda":
        row["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20
    ctx.free()
    check.table("FID + IS end to end, deep-128 bf16 eager", [row])


from gpu_sections_more import (  # noqa: E402  (the later sections, split for length)
    section_autotune, section_cli, section_compiled, section_cudagraphs, section_layout, section_oom)

__all__ = ["Context", "section_env", "section_eager", "section_fid_dtype", "section_tf32", "section_fid10k",
           "section_layout", "section_oom", "section_cli", "section_compiled", "section_cudagraphs",
           "section_autotune"]
