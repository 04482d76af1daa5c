"""``stats compute`` on a folder of JPEGs against torch-fidelity's ``fidelity`` CLI, side by side.

The same folder (``--images`` JPEGs of mixed sizes, 300-500 px, written once), the same
preprocessing (torch-fidelity's resize-and-centre-crop to ``--resize``: our ``--resize`` is
that transform), the same random Inception weights file, the same batch size, CPU:

- ``bigganctl stats compute DIR --resize R --workers K`` for each K in ``--workers``
  (mu/sigma of pool_3, float64 sums);
- ``fidelity --input1 DIR --isc --samples-resize-and-crop R`` (torch-fidelity's one-input
  run: the same decode + resize + Inception forward over the folder; its DataLoader uses
  min(4, 2 x cores) workers) and the same with ``--save-cpu-ram`` (no workers).

Each run is its own process; reported: wall seconds, images/s, peak RSS of the main
process (``ru_maxrss`` from ``wait4``) and the peak of the summed PSS of the process and
its workers (``/proc/PID/smaps_rollup``, sampled every 0.1 s: shared pages are counted
once). Run on an idle machine; the load average is printed.

    python benchmarks/bench_stats.py                            # 256 images, 128 px
    python benchmarks/bench_stats.py --images 1024 --workers 0,2,4 --json out/bench_stats.json
    python benchmarks/bench_stats.py --device cuda --images 4096 --workers 0,4,8   # where workers matter
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def write_jpegs(folder: Path, n: int, seed: int = 0) -> Path:
    """``n`` smooth random RGB JPEGs (quality 90) of sizes 300-500 px on either side."""
    import numpy as np
    import torch
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        w, h = (int(v) for v in rng.integers(300, 501, size=2))
        g = torch.from_numpy(rng.random((1, 3, 8, 8), dtype=np.float32) * 255)
        x = torch.nn.functional.interpolate(g, size=(h, w), mode="bilinear", align_corners=False)
        arr = x[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
        Image.fromarray(arr).save(folder / f"{i:06d}.jpg", quality=90)
    return folder


def _descendants(pid: int) -> list[int]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


def _pss_mb(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def measure(cmd: list[str], env: dict) -> dict:
    """Run ``cmd``; wall seconds, main-process peak RSS, peak summed PSS of its process tree."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = [0.0]
    done = threading.Event()

    def poll() -> None:
        while not done.wait(0.1):
            peak[0] = max(peak[0], _pss_mb(_descendants(proc.pid)))

    th = threading.Thread(target=poll, daemon=True)
    th.start()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    done.set()
    th.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-3000:]}")
    return {"seconds": round(wall, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "peak_tree_pss_mb": round(peak[0], 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--resize", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", default="0,2", help="bigganctl --workers values (comma-separated)")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--skip-fidelity", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    from bigganctl.testing.inception import write_random_inception

    tmp = Path(tempfile.mkdtemp(prefix="bench-stats-"))
    try:
        folder = write_jpegs(tmp / "imgs", args.images)
        weights = write_random_inception(tmp / "inception.pth", seed=0)
        env = {**os.environ, "BIGGANCTL_HOME": str(tmp / "home"), "BIGGANCTL_OFFLINE": "1",
               "TORCH_HOME": str(tmp / "torch")}
        runs: list[tuple[str, list[str]]] = []
        for k in (int(v) for v in args.workers.split(",")):
            runs.append((f"bigganctl stats compute --workers {k}", [
                str(BIN / "bigganctl"), "stats", "compute", str(folder), "--resize", str(args.resize),
                "--out", str(tmp / f"st{k}.npz"), "--inception-weights", str(weights), "--device", args.device,
                "--batch-size", str(args.batch_size), "--workers", str(k), "--no-resume", "--quiet"]))
        if not args.skip_fidelity:
            where = ["--cpu"] if args.device == "cpu" else ["--gpu", "0"]
            fid = [str(BIN / "fidelity"), "--input1", str(folder), "--isc", *where, "--samples-resize-and-crop",
                   str(args.resize), "--feature-extractor-weights-path", str(weights), "--batch-size",
                   str(args.batch_size), "--no-cache", "--silent"]
            runs += [("fidelity --isc (its default workers)", fid),
                     ("fidelity --isc --save-cpu-ram (no workers)", [*fid, "--save-cpu-ram"])]
        rows = []
        print(f"{args.images} JPEGs 300-500 px -> {args.resize} px, batch {args.batch_size}, {args.device}, "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}", flush=True)
        for name, cmd in runs:
            r = measure(cmd, env)
            r.update(tool=name, images_per_second=round(args.images / r["seconds"], 2))
            rows.append(r)
            print(f"{name:45s} {r['seconds']:8.1f} s {r['images_per_second']:7.2f} img/s "
                  f"rss {r['peak_rss_mb']:7.0f} MB  tree pss {r['peak_tree_pss_mb']:7.0f} MB", flush=True)
        doc = {"images": args.images, "resize": args.resize, "batch_size": args.batch_size, "device": args.device,
               "cpus": os.cpu_count(), "load_average": os.getloadavg()[0], "rows": rows}
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(doc, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
