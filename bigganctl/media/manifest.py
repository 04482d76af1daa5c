"""THE manifest builder: what every output file records beside it (``FILE.json``).

Each kind (``bigganctl.sample``, ``bigganctl.interp``, ``bigganctl.sweep``) is one function
here; the provenance they share (model, weights, truncation, precision, device, versions,
creation time) comes from the same helpers, so it reads the same everywhere.
"""

from __future__ import annotations

import datetime as _dt
import platform
import shlex
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import torch

from .. import __version__
from ..classes import ClassInfo
from ..models.base import model_name
from ..generate import model_device
from ..parsing import range_text
from ..runtime.device import dtype_name
from ..noise import CONVENTIONS
from ..types import Generator, Model

PIXELS = "uint8 = round((x + 1) * 127.5) clamped to [0, 255] (bigganctl.to_uint8)"
NOISE = "truncated_noise([seed], z_dim, psi, truncation), per sample"


def created() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def versions(*packages: str) -> dict[str, str | None]:
    """bigganctl, torch and Python, plus the installed version of each of ``packages``."""
    if not packages:
        return {"bigganctl": __version__, "torch": torch.__version__, "python": platform.python_version()}
    out: dict[str, str | None] = {"bigganctl": __version__, "python": platform.python_version()}
    for pkg in packages:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def precision(G: Generator) -> tuple[str | None, str]:
    """(dtype name, device) of a generator's parameters."""
    p = next(iter(G.parameters()), None)
    dtype = dtype_name(p.dtype) if p is not None and p.is_floating_point() else None
    return dtype, str(model_device(G))


def _generator_fields(G: Generator, model: Model, psi: float) -> dict[str, Any]:
    """The head of a sample manifest: which generator, which weights, which truncation."""
    return {
        "kind": "bigganctl.sample",
        "model": model_name(G, model),
        "resolution": int(G.resolution),
        "z_dim": int(G.z_dim),
        "weights": dict(getattr(G, "weights_info", None) or {"source": "instance", "sha256": None}),
        "psi": psi,
        "truncation": G.truncation,
        "truncation_rule": CONVENTIONS[G.truncation],
    }


def _run_fields(G: Generator) -> dict[str, Any]:
    """The tail of a sample manifest: how the pixels were made and when."""
    dtype, device = precision(G)
    return {"noise": NOISE, "pixels": PIXELS, "dtype": dtype, "device": device, "versions": versions(),
            "created": created()}


def sample_manifest(G: Generator, model: Model, classes: Sequence[ClassInfo], seeds: Sequence[int],
                    psi: float) -> dict[str, Any]:
    """Everything needed to regenerate ``sample``'s images (see docs/sampling.md)."""
    return {
        **_generator_fields(G, model, psi),
        "classes": [c.to_dict() for c in classes],
        "seeds": list(seeds),
        "order": "class-major: image i has classes[i // len(seeds)], seeds[i % len(seeds)]",
        "shape": [len(classes) * len(seeds), 3, int(G.resolution), int(G.resolution)],
        **_run_fields(G),
    }


def plan_manifest(G: Generator, model: Model, plan: Any, psi: float) -> dict[str, Any]:
    """The manifest of an evaluation plan (``sample --classes balanced|random``): the plan,
    its seed rule and psi; the samples ``eval`` measures with the same settings."""
    desc = plan.describe(int(G.num_classes))
    return {
        **_generator_fields(G, model, psi),
        "plan": desc,
        "classes": plan.kind,
        "seed": plan.seed,
        "n": plan.n,
        "seeds": range_text(list(plan.seeds)),
        "order": desc["rule"],
        "shape": [plan.n, 3, int(G.resolution), int(G.resolution)],
        **_run_fields(G),
    }


def reproduce_command(manifest: dict[str, Any], *, weights: str | None = None) -> str:
    """A ``bigganctl sample`` command line that regenerates the manifest's images."""
    args = ["bigganctl", "sample", "--model", manifest["model"]]
    info = manifest.get("weights") or {}
    src = weights
    if src is None and info.get("sha256") == "random":
        src = "random"
    elif src is None and info.get("source") not in ("cache", "download", "hub", "registry"):
        src = info.get("path")
    if src:
        args += ["--weights", str(src)]
    if isinstance(manifest["classes"], str):          # an evaluation plan
        args += ["--classes", manifest["classes"], "--n", str(manifest["n"]), "--seed", str(manifest["seed"]),
                 "--trunc", repr(manifest["psi"]), "--no-grid"]
    else:
        args += ["--class", ",".join(str(c["index"]) for c in manifest["classes"])]
        args += ["--seeds", range_text(manifest["seeds"]), "--trunc", repr(manifest["psi"])]
    if manifest.get("dtype") and manifest["dtype"] != "fp32":
        args += ["--dtype", manifest["dtype"]]
    return shlex.join(args)


def interp_manifest(G: Generator, path: Any, info: Any, *, psi: float, classes: list[dict], captions: bool,
                    nrow: int | None, frames_dir: str | None, video_format: str,
                    command: str | None = None) -> dict[str, Any]:
    """Everything needed to reproduce (and identify) a rendered video; ``path`` an
    :class:`~bigganctl.paths.InterpPath`, ``info`` the render's VideoInfo."""
    dtype, device = precision(G)
    return {
        "kind": "bigganctl.interp",
        "video": info.path,
        "format": video_format,
        "frames": info.frames,
        "width": info.width,
        "height": info.height,
        "fps": info.fps,
        "duration_s": round(info.frames / info.fps, 6),
        "model": model_name(G),
        "resolution": G.resolution,
        "weights": getattr(G, "weights_info", None),
        "classes": classes,
        "waypoint_classes": list(path.classes),
        "seeds": [list(col) for col in path.seeds],
        "psi": psi,
        "truncation": G.truncation,
        "truncation_rule": CONVENTIONS.get(G.truncation),
        "steps": path.steps,
        "ease": path.ease,
        "z": path.z_mode,
        "loop": path.loop,
        "waypoint_frames": path.waypoint_frames(),
        "frame_rule": "segments*steps + 1 (end frame on the last waypoint)" if not path.loop
                      else "segments*steps (loops back to the first frame)",
        "caption": captions,
        "nrow": nrow,
        "frames_dir": frames_dir,
        "dtype": dtype,
        "device": device,
        "render_seconds": round(info.seconds, 3),
        "versions": versions("torch", "numpy", "pillow", "imageio-ffmpeg"),
        "created": created(),
        "command": command,
    }


def sweep_manifest(doc: dict, idents: Sequence[dict], gens: dict, strip: dict | None,
                   command: str | None) -> dict[str, Any]:
    """The sweep's ``manifest.json``: models and weights, psi grid, settings, strip, files."""
    models = []
    for i, ident in enumerate(idents):
        G = gens.get(i)
        winfo = dict(getattr(G, "weights_info", None) or {}) if G is not None else {}
        models.append({**{k: ident[k] for k in ("model", "arch", "format", "resolution", "source", "sha256")},
                       "truncation": ident["truncation"], "truncation_rule": CONVENTIONS[ident["truncation"]],
                       "weights_path": winfo.get("path")})
    return {
        "kind": "bigganctl.sweep",
        "models": models,
        "psis": doc["psis"],
        **doc["settings"],
        "samples": "sample i: seed S+i, class i of the plan (balanced: i mod 1000), the same for every psi",
        "noise": NOISE,
        "strip": strip,
        "files": doc["files"],
        "command": command,
        "versions": versions(),
        "created": created(),
    }

