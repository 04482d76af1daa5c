"""GPU checks and benchmarks in one run that always leaves figures (see gpu_check.sh).

Sections run cheap-first; each is guarded (a failure or a time-out prints one line and the
run goes on), has its own hard time limit (SIGALRM; the whole run is bounded by
``--budget`` seconds, default 360) and rewrites ``$OUT/gpu_check.json`` when it ends.
Full tracebacks go to ``$OUT/gpu_check_errors.log``; gpu_check.sh tees stdout to
``$OUT/gpu_check.log``.

 1. env          versions, GPU, TF32 flags, free memory, automatic batch sizes; writes
                 the random checkpoints
 2. eager        images/s, eager, fp32 / bf16, deep-128/256/512; CUDA vs CPU vs the
                 reference port (max |diff|), bf16/fp16 vs fp32
 3. fid_dtype    FID + IS, bf16 vs fp32 generator on the same seeds
 4. tf32         FID with TF32 on vs off in the feature extractor only
 5. fid10k       FID-10k + IS of deep-128 bf16, eager, end to end (peak memory, FID-50k time)
 6. layout       NCHW vs NHWC, generator (a copy: the loader's cached model is untouched)
                 and extractor
 7. oom          a forced out-of-memory error: generator, uint8 and Inception back-off,
                 same images / features
 8. cli          ``bigganctl eval fid --device cuda`` in a fresh process
 9. compiled     torch.compile default: compile time, images/s, uint8 vs eager (whole
                 batches and a padded partial batch)
10. cudagraphs   reduce-overhead: images/s after the graph is recorded, cudagraph skips,
                 two consecutive graph replays and a partial batch vs eager
11. autotune     max-autotune in a child process under a hard timeout (its log goes to
                 ``$OUT/autotune.log``), only when time is left

Random weights everywhere (no download on the GPU machine): FIDs compare with each other
only. ``--cpu`` rehearses every section on the CPU with tiny models and small N
(tests/system/test_gpu_check.py runs it in the slow tier).

    python benchmarks/gpu_check.py                      # on a CUDA machine
    python benchmarks/gpu_check.py --cpu --out /tmp/gc  # the rehearsal
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
try:                                   # the installed wheel (gpu_check.sh), else the tree
    import bigganctl  # noqa: F401
except ImportError:
    sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))


class SectionTimeout(BaseException):
    """Raised by SIGALRM when a section runs past its limit (BaseException: code that
    catches Exception must not swallow it)."""


class Check:
    """Results, the time budget, the JSON document and the guarded sections."""

    def __init__(self, out: Path, budget_s: float, cpu: bool):
        self.out, self.budget, self.cpu = out, budget_s, cpu
        self.t0 = time.monotonic()
        self.doc: dict = {"budget_s": budget_s, "cpu_rehearsal": cpu, "sections": {}}
        self.current: dict = {}
        self.deadline = self.t0 + budget_s
        out.mkdir(parents=True, exist_ok=True)
        self.path = out / "gpu_check.json"
        self.errors = out / "gpu_check_errors.log"

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def left(self) -> float:
        return self.budget - self.elapsed()

    def write(self) -> None:
        """Atomic rewrite of gpu_check.json (NaN and infinities as null)."""
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(_clean(self.doc), indent=1, default=str))
        os.replace(tmp, self.path)

    def value(self, key: str, v) -> None:
        self.current.setdefault("values", {})[key] = v
        print(f"  {key}: {_fmt(v)}", flush=True)

    def table(self, title: str, rows: list[dict]) -> None:
        """Print rows whose keys may differ (the union, '-' where missing) and keep them."""
        self.current.setdefault("tables", {})[title] = rows
        print(f"  == {title}")
        cols: list[str] = []
        for r in rows:
            cols += [k for k in r if k not in cols]
        if not cols:
            return
        print("  " + " | ".join(cols))
        for r in rows:
            print("  " + " | ".join(_fmt(r.get(c, "-")) for c in cols), flush=True)
        self.write()

    def section(self, name: str, fn: Callable[[Check], None], limit_s: float, min_s: float = 5.0) -> None:
        """Run ``fn(self)`` with a hard limit of ``min(limit_s, time left)`` seconds."""
        rec = self.doc["sections"][name] = self.current = {"status": "running"}
        left = self.left()
        if left < min_s:
            rec["status"] = "skipped"
            print(f"-- {name}: skipped ({left:.0f} s of the budget left, needs {min_s:.0f})", flush=True)
            self.write()
            return
        limit = max(1.0, min(limit_s, left))
        self.deadline = time.monotonic() + limit
        print(f"-- {name} (limit {limit:.0f} s, {self.elapsed():.0f} s elapsed)", flush=True)
        t0 = time.monotonic()
        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, limit)
        try:
            fn(self)
            rec["status"] = "ok"
        except SectionTimeout:
            rec["status"] = "timeout"
        except KeyboardInterrupt:
            rec["status"] = "interrupted"
            raise
        except Exception as e:  # noqa: BLE001   one failure must not end the run
            rec["status"] = "failed"
            rec["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
            with open(self.errors, "a") as f:
                f.write(f"== {name}\n{traceback.format_exc()}\n")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            rec["seconds"] = round(time.monotonic() - t0, 2)
            self.write()
        if rec["status"] != "ok":
            print(f"!! {name}: {rec['status'].upper()} after {rec['seconds']:.1f} s"
                  + (f": {rec['error']}" if "error" in rec else ""), flush=True)


def _alarm(signum, frame):
    raise SectionTimeout


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _clean(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


#: (name, limit seconds, minimum seconds left to start); the budget is 360 s by default
SECTIONS = (("env", 60, 1), ("eager", 90, 20), ("fid_dtype", 45, 20), ("tf32", 30, 15),
            ("fid10k", 40, 15), ("layout", 20, 10), ("oom", 25, 10), ("cli", 60, 20),
            ("compiled", 100, 45), ("cudagraphs", 100, 45), ("autotune", 90, 50))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu", action="store_true", help="rehearse on the CPU with tiny models")
    ap.add_argument("--out", default=os.environ.get("OUT") or str(REPO / "out"))
    ap.add_argument("--budget", type=float, default=float(os.environ.get("GPU_CHECK_BUDGET_S", "360")))
    ap.add_argument("--only", default="", help="comma-separated section names (default: all)")
    ap.add_argument("--limit-scale", type=float, default=None,
                    help="multiply every section's time limit (default 1, with --cpu 3)")
    ap.add_argument("--inductor", action="store_true",
                    help="with --cpu: compile with inductor (default: dynamo capture only, fast)")
    args = ap.parse_args(argv)
    import gpu_sections as S

    check = Check(Path(args.out), args.budget, args.cpu)
    only = [s for s in args.only.split(",") if s]
    ctx = S.Context(check, cpu=args.cpu, inductor=args.inductor)
    try:
        for name, limit, min_s in SECTIONS:
            if only and name not in only:
                continue
            scale = args.limit_scale or (3.0 if args.cpu else 1.0)    # a busy 2-core CPU is slower
            check.section(name, getattr(S, f"section_{name}").__get__(ctx), limit * scale, min_s)
    except KeyboardInterrupt:
        print("!! interrupted: gpu_check.json holds the sections finished so far", flush=True)
        return 130
    finally:
        check.doc["total_s"] = round(check.elapsed(), 1)
        check.write()
        ctx.close()
    failed = [n for n, r in check.doc["sections"].items() if r["status"] not in ("ok", "skipped")]
    print(f"\nwrote {check.path} in {check.elapsed():.0f} s; not ok: {', '.join(failed) or 'none'}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
