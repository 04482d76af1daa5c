"""The sweep's table and pictures: ``sweep.csv``, ``sweep.png`` (matplotlib's Agg canvas)
and ``strip.png``."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path


import torch

from .._io import atomic_open, atomic_path
from ..errors import RuntimeFailure
from .images import make_grid, write_image

#: The columns of ``sweep.csv`` and of a sweep row (``model`` first when several models).
COLUMNS = ("psi", "convention", "fid", "is_mean", "is_std", "kid_mean", "kid_std", "sfid", "precision", "recall",
           "n", "seconds")


def write_csv(path: Path, rows: Sequence[dict], *, multi: bool) -> None:
    """One line per row; empty cells for metrics not computed; floats written exactly."""
    cols = (("model",) if multi else ()) + COLUMNS
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        w.writerow(["" if r.get(c) is None else repr(r[c]) if isinstance(r[c], float) else r[c] for c in cols])
    with atomic_open(path, "w") as fh:
        fh.write(buf.getvalue())


def plot_sweep(path: Path, rows: Sequence[dict], *, metrics: Sequence[str], title: str = "") -> None:
    """``sweep.png``: IS against FID (points labelled by psi) and each metric against psi,
    one line per model; precision and recall share one panel (the fidelity-diversity trade-off
    of truncation). Matplotlib's Agg canvas, no pyplot (no global backend state)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise RuntimeFailure("plotting needs matplotlib: pip install matplotlib") from None

    panels: list[tuple[str, str, str, str | None]] = []     # (x, y, y label, error key)
    if "fid" in metrics and "is" in metrics:
        panels.append(("fid", "is_mean", "IS", "is_std"))
    panels += [("psi", k, lab, err) for m, k, lab, err in (("fid", "fid", "FID", None), ("is", "is_mean", "IS", "is_std"),
                                                            ("kid", "kid_mean", "KID", "kid_std"),
                                                            ("sfid", "sfid", "sFID", None)) if m in metrics]
    pr = [m for m in ("precision", "recall") if m in metrics]
    if pr:
        panels.append(("psi", ",".join(pr), " / ".join(pr), None))
    fig = Figure(figsize=(4.6 * len(panels), 4.2), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    models = list(dict.fromkeys(r["model"] for r in rows))
    for j, (xk, yks, ylab, errk) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), j + 1)
        for m, yk in ((m, yk) for m in models for yk in yks.split(",")):
            rs = [r for r in rows if r["model"] == m and r.get(xk) is not None and r.get(yk) is not None]
            xs, ys = [r[xk] for r in rs], [r[yk] for r in rs]
            label = m if "," not in yks else (yk if len(models) == 1 else f"{m} {yk}")
            line, = ax.plot(xs, ys, marker="o" if yk != "recall" else "s", label=label)
            if errk and xk == "psi":
                ax.fill_between(xs, [y - (r[errk] or 0) for y, r in zip(ys, rs)],
                                [y + (r[errk] or 0) for y, r in zip(ys, rs)], alpha=0.15, color=line.get_color())
            if xk != "psi":
                for r, x, y in zip(rs, xs, ys):
                    ax.annotate(f"{r['psi']:g}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_xlabel({"fid": "FID (lower is better)", "psi": "truncation psi"}[xk])
        ax.set_ylabel(ylab if xk == "psi" else "IS (higher is better)")
        ax.set_title("IS vs FID (labels: psi)" if xk != "psi" else f"{ylab} vs psi", fontsize=10)
        ax.grid(alpha=0.3)
        ax.ticklabel_format(axis="y", useOffset=False, style="plain")
        if len(models) > 1 or "," in yks:
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def write_strip(path: Path, blocks: Sequence[torch.Tensor], *, columns: int) -> int:
    """``strip.png``: the uint8 blocks ([rows * columns, 3, R, R] each, one per model) one
    under the other, ``columns`` tiles per row; tiles of other resolutions are resized
    (antialiased bilinear) to the first block's. Returns the tile size."""
    res = int(blocks[0].shape[-1])
    resized = [x if x.shape[-1] == res else
               torch.nn.functional.interpolate(x.float(), size=(res, res), mode="bilinear", antialias=True,
                                               align_corners=False).round().clamp(0, 255).to(torch.uint8)
               for x in blocks]
    write_image(path, make_grid(torch.cat(resized), columns))
    return res
