"""Peak memory of `bigganctl interp` rendering: 600 frames vs 60 frames, per format.

Each measurement runs in its own subprocess (fresh interpreter) and reports the peak
resident set size of the Python process (``ru_maxrss``) and, on Linux, of the ffmpeg
encoder it drives for .mp4 (``VmHWM`` of its child processes, polled from /proc;
``RUSAGE_CHILDREN`` would report the parent's size at fork). Streaming means the
600-frame peak stays within 20 % of the 60-frame peak.

    python benchmarks/bench_interp.py                      # tiny random 128 px generator (fast)
    python benchmarks/bench_interp.py --model biggan-deep-128 --formats mp4   # real loader, random weights
    python benchmarks/bench_interp.py --md /tmp/interp-bench.md   # then paste into docs/benchmarks.md

``tiny`` is a small convolutional generator defined below (128 px output, random
weights, a few thousand parameters): the model adds almost nothing to the peak, so any
growth from the frame pipeline would show up clearly.
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

ROOT = Path(__file__).resolve().parents[1]


def _tiny_generator():
    import torch
    from torch import nn

    from bigganctl.models.base import Generator

    class Tiny(Generator):
        def __init__(self):
            super().__init__()
            self.z_dim, self.num_classes, self.resolution, self.truncation = 128, 1000, 128, "deepmind"
            g = torch.Generator().manual_seed(0)
            self.embed = nn.Parameter(torch.randn(1000, 16, generator=g))
            self.fc = nn.Linear(128 + 16, 16 * 4 * 4)
            self.convs = nn.ModuleList([nn.Conv2d(16 if i == 0 else 8, 8, 3, padding=1) for i in range(5)])
            self.to_rgb = nn.Conv2d(8, 3, 3, padding=1)
            with torch.no_grad():                        # He init: activations keep their scale
                for m in [self.fc, *self.convs, self.to_rgb]:
                    fan_in = m.weight[0].numel()
                    m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
                    m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
            self.eval().requires_grad_(False)

        def synthesize(self, z, y, psi):
            h = torch.tanh(self.fc(torch.cat([z, y @ self.embed], 1))).view(-1, 16, 4, 4)
            for conv in self.convs:
                h = torch.relu(conv(nn.functional.interpolate(h, scale_factor=2.0)))
            return torch.tanh(self.to_rgb(h))

    G = Tiny()
    G.weights_info = {"source": "random", "sha256": "random"}
    return G


def _watch_children(stop, peak: list[float]) -> None:
    """Poll /proc for this process's children and keep the largest VmHWM (MiB)."""
    me = str(os.getpid())
    while not stop.is_set():
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[1] != me:
                        continue
                with open(f"/proc/{d}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            peak[0] = max(peak[0], int(line.split()[1]) / 1024)
            except (OSError, IndexError):
                pass
        stop.wait(0.05)


def child(args) -> None:
    import threading

    import torch

    from bigganctl.api.interp import render_interp
    from bigganctl.paths import make_path

    torch.set_num_threads(1)
    if args.model == "tiny":
        G = _tiny_generator()
    else:
        from bigganctl.weights.loader import load_generator

        G = load_generator(args.model, weights="random", device="cpu", dtype="fp32")
    path = make_path([207, 1], [0], steps=args.frames - 1)          # 2 classes: steps + 1 frames
    stop, child_peak = threading.Event(), [0.0]
    watcher = threading.Thread(target=_watch_children, args=(stop, child_peak), daemon=True)
    if os.path.isdir("/proc"):
        watcher.start()
    with tempfile.TemporaryDirectory(dir=args.tmp) as d:
        t0 = time.perf_counter()
        info = render_interp(G, path, Path(d) / f"v.{args.format}", psi=0.5, fps=24, batch_size=args.batch_size)
        secs = time.perf_counter() - t0
        size = (Path(d) / f"v.{args.format}").stat().st_size
    stop.set()
    scale = 1 if sys.platform == "darwin" else 1024                     # ru_maxrss: bytes on macOS, KiB on Linux
    print(json.dumps({
        "frames": info.frames, "format": args.format, "seconds": round(secs, 2), "bytes": size,
        "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20,
        "ffmpeg_rss_mib": child_peak[0],
    }))


def measure(model: str, fmt: str, frames: int, batch_size: int) -> dict:
    cmd = [sys.executable, __file__, "--child", "--model", model, "--format", fmt, "--frames", str(frames),
           "--batch-size", str(batch_size), "--tmp", str(ROOT)]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny", help="tiny (default) or a registered name (random weights)")
    ap.add_argument("--formats", default="mp4,gif,webp")
    ap.add_argument("--lengths", default="60,600")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--md", type=Path, help="also write the markdown table here")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--format", help=argparse.SUPPRESS)
    ap.add_argument("--frames", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--tmp", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)

    lengths = [int(n) for n in args.lengths.split(",")]
    rows = []
    for fmt in args.formats.split(","):
        res = [measure(args.model, fmt, n, args.batch_size) for n in lengths]
        for r in res:
            print(json.dumps(r), file=sys.stderr)
        growth = res[-1]["rss_mib"] / res[0]["rss_mib"] - 1
        rows.append((fmt, res, growth))

    head = (f"Model `{args.model}` (random weights), 128 px frames, batch {args.batch_size}, CPU, "
            f"{platform.python_implementation()} {platform.python_version()} on {platform.machine()}, "
            "torch threads 1.")
    cols = ("| format | frames | seconds | file | peak RSS (python) | peak RSS (ffmpeg) | "
            f"growth {lengths[0]}->{lengths[-1]} |")
    lines = [head, "", cols, "|---|---|---|---|---|---|---|"]
    for fmt, res, growth in rows:
        for i, r in enumerate(res):
            g = f"{growth * 100:+.1f} %" if i == len(res) - 1 else ""
            ff = f"{r['ffmpeg_rss_mib']:.1f} MiB" if fmt == "mp4" and r["ffmpeg_rss_mib"] else "-"
            lines.append(f"| .{fmt} | {r['frames']} | {r['seconds']:.1f} | {r['bytes'] / 1024:.0f} KiB | "
                         f"{r['rss_mib']:.1f} MiB | {ff} | {g} |")
    table = "\n".join(lines)
    print(table)
    if args.md:   # fills the <!-- TABLE --> marker of an existing page, else writes the table alone
        old = args.md.read_text() if args.md.exists() else ""
        args.md.write_text(old.replace("<!-- TABLE -->", table) if "<!-- TABLE -->" in old else table + "\n")
    worst = max(g for _, _, g in rows)
    sys.exit(0 if worst <= 0.20 else 1)


if __name__ == "__main__":
    main()
