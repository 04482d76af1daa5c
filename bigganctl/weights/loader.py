"""THE shared model loader: spec -> weights -> generator on device and dtype.

::

    G = load_generator("biggan-deep-128", weights=None, device="auto", dtype="fp32")

``model``: a registered name (``bigganctl models list``), a Hugging Face-style folder
(``config.json`` + weights; the architecture is read from the config) or a
:class:`~bigganctl.weights.registry.ModelSpec`.

``weights``: ``None`` (registry -> cache -> download, see :mod:`bigganctl.weights.hub`), a local
file or folder in the spec's checkpoint format, or ``"random"`` (a deterministic, sane
random initialisation: the same weights in every process and on every machine).

The result is in eval mode with ``requires_grad_(False)``, on the resolved device and
dtype, and carries ``G.spec`` (the ModelSpec) and ``G.weights_info`` (``source``:
``random`` | ``cache`` | ``file``; ``path``; ``sha256`` or ``"random"``; ``format``).
Loading the same thing twice in one process returns the same module (cache key: spec,
weights path with size and mtime, device, dtype), so callers must not modify it in place.

Architectures and checkpoint formats are tables (name -> import path), imported lazily.
A format module offers ``read(path, spec) -> (config | None, state_dict)`` with the state
dict in bigganctl's layout; an architecture class takes its config and offers
``random_init_(seed)``.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import weakref
from pathlib import Path
from typing import Any
from collections.abc import Callable

import torch

from . import foldcache, hub
from .checksums import stat_key
from ..errors import CheckpointError, UsageError
from .formats.checkpoint import WEIGHT_PATTERNS, check_keys, find_weights_file
from ..models.config import BigGANConfig, BigGANDeepConfig
from ..progress import ProgressArg, Reporter, as_reporter
from .registry import REGISTRY, ModelSpec, RemoteFile, get_spec
from ..runtime.device import resolve_device, resolve_dtype

#: architecture name -> "module:Class" (or the class itself; tests register tiny ones)
ARCHS: dict[str, Any] = {
    "biggan-deep": "bigganctl.models.biggan_deep:BigGANDeep",
    "biggan": "bigganctl.models.biggan:BigGAN",
}

#: checkpoint format name -> module path (or a module-like object with ``read``)
FORMATS: dict[str, Any] = {
    "hf": "bigganctl.weights.formats.hf",
    "ajbrock": "bigganctl.weights.formats.ajbrock",
    "ivclab": "bigganctl.weights.formats.ivclab",
    "tutorial": "bigganctl.weights.formats.tutorial",
}

#: how a folder's config.json names its architecture, when it has no "arch" key
_ARCH_DETECTORS: tuple[tuple[str, Callable[[dict], bool]], ...] = (
    ("biggan-deep", lambda d: "layers" in d and "channel_width" in d),
    ("biggan", lambda d: "ch" in d and "dim_z" in d),
)
_DEFAULT_FORMAT = {"biggan-deep": "hf", "biggan": "ajbrock"}

RANDOM = "random"
RANDOM_SEED = 0


# ---------------------------------------------------------------------------------------
# Tables

def _imported(table: dict[str, Any], name: str, what: str) -> Any:
    """``table[name]``, a ``"module"`` or ``"module:attr"`` string imported on first use."""
    try:
        entry = table[name]
    except KeyError:
        raise UsageError(f"unknown {what} {name!r} (known: {', '.join(table)})", param="model") from None
    if isinstance(entry, str):
        mod, _, attr = entry.partition(":")
        entry = importlib.import_module(mod)
        entry = getattr(entry, attr) if attr else entry
    return entry


def arch_class(arch: str) -> type:
    """The Generator class of an architecture name (imported on first use)."""
    return _imported(ARCHS, arch, "architecture")


def format_module(fmt: str) -> Any:
    """The adapter module of a checkpoint format name (imported on first use)."""
    return _imported(FORMATS, fmt, "checkpoint format")


# ---------------------------------------------------------------------------------------
# model -> spec

def resolve_spec(model: str | os.PathLike | ModelSpec) -> ModelSpec:
    """A registered name, a folder with ``config.json``, or a spec -> ModelSpec."""
    if isinstance(model, ModelSpec):
        return model
    name = os.fspath(model)
    if name in REGISTRY:
        return REGISTRY[name]
    p = Path(name).expanduser()
    if p.is_dir():
        return spec_from_folder(p)
    if p.exists() or os.sep in name or name.endswith((".json", ".bin", ".pt", ".pth", ".safetensors")):
        raise UsageError(f"{name} is not a registered model or a folder with config.json "
                         f"(to load a weights file, pass --model NAME --weights {name})",
                         param="model")
    return get_spec(name)   # raises UsageError with suggestions


def spec_from_folder(folder: Path) -> ModelSpec:
    """A spec for a Hugging Face-style folder: ``config.json`` (+ ``arch``/``format`` keys
    optional) next to the weights."""
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise UsageError(f"{folder} has no config.json (a model folder needs config.json + weights)",
                         param="model")
    try:
        d = json.loads(cfg_path.read_text())
        if not isinstance(d, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{cfg_path}: not a readable config ({e})") from None
    arch = d.get("arch") or next((a for a, test in _ARCH_DETECTORS if test(d)), None)
    if arch is None:
        raise CheckpointError(f"{cfg_path}: cannot tell the architecture (no 'arch' key, and "
                              f"neither BigGAN-deep fields (layers, channel_width) nor BigGAN "
                              f"fields (ch, dim_z))")
    fmt = d.get("format") or _DEFAULT_FORMAT.get(arch, "hf")
    try:
        config = _config_from_dict(arch, d)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{cfg_path}: invalid {arch} config ({e})") from None
    if arch == "biggan-deep":
        truncation = "deepmind"
    else:
        truncation = d.get("truncation") or ("deepmind" if getattr(config, "n_stats", 0) else "paper")
    return ModelSpec(name=folder.name, arch=arch, config=config, format=fmt, truncation=truncation,
                     description=f"model folder {folder}", local_dir=str(folder.resolve()))


def _config_from_dict(arch: str, d: dict) -> Any:
    if arch == "biggan-deep":
        return BigGANDeepConfig.from_hf_dict(d)
    if arch == "biggan":
        fields = {f.name: f for f in dataclasses.fields(BigGANConfig)}
        kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in fields}
        if "extra" in kw:
            kw["extra"] = tuple(tuple(x) for x in kw["extra"])
        return BigGANConfig(**kw)
    cfg_cls = getattr(arch_class(arch), "config_class", None)
    if cfg_cls is None:
        raise ValueError(f"architecture {arch!r} cannot be configured from a folder")
    return cfg_cls(**{k: v for k, v in d.items() if k not in ("arch", "format", "truncation")})


# ---------------------------------------------------------------------------------------
# weights -> path

def _weights_remote(spec: ModelSpec) -> RemoteFile | None:
    files = [f for f in spec.files if f.filename != "config.json"]
    return files[-1] if files else None


def _resolve_weights(spec: ModelSpec, weights: str | os.PathLike | None, *,
                     progress: Reporter | None) -> tuple[str, Path | None, Path | None]:
    """-> (source, what identifies the weights for the load cache, the weights file).

    The weights file is decided here, once (:func:`~bigganctl.weights.formats.checkpoint.find_weights_file`
    for folders): the format reader gets that very file, so the sha256 recorded in
    ``G.weights_info`` is always the sha256 of the file that was loaded.
    """
    if weights is not None and os.fspath(weights) == RANDOM:
        return "random", None, None
    if weights is None:
        if spec.local_dir is not None:
            folder = Path(spec.local_dir)                       # a model folder: its own weights
            wfile = find_weights_file(folder)
            if wfile is None:
                raise UsageError(f"{folder} has config.json but no weights file "
                                 f"({', '.join(WEIGHT_PATTERNS)})", param="model")
            return "file", folder, wfile
        if not spec.files:
            raise UsageError(f"{spec.name} has no published weights; pass --weights PATH "
                             f"(or --weights random)", param="weights")
        paths = hub.ensure_spec(spec, progress=progress)
        remote = _weights_remote(spec)
        wfile = hub.file_path(spec, remote) if remote else paths[-1]
        target = hub.spec_dir(spec) if len(spec.files) > 1 else wfile
        return "cache", target, wfile
    p = Path(os.fspath(weights)).expanduser()
    if not p.exists():
        raise UsageError(f"no such file or folder: {p} (pass a weights file or folder, or `random`)",
                         param="weights")
    if p.is_dir():
        wfile = find_weights_file(p)
        if wfile is None:
            raise UsageError(f"{p} contains no weights file ({', '.join(WEIGHT_PATTERNS)})",
                             param="weights")
        return "file", p, wfile
    remote = _weights_remote(spec)
    if remote is not None and remote.member and _is_archive(p):
        extracted = hub.extract_to_cache(p, remote, hub.subdir_of(spec))
        return "file", extracted, extracted
    return "file", p, p


def weights_identity(model: str | os.PathLike | ModelSpec = "biggan-deep-128",
                     weights: str | os.PathLike | None = None, *,
                     progress: Reporter | None = None) -> dict[str, Any]:
    """What :func:`load_generator` would load, without building the model: the spec's
    name, architecture, format and truncation convention, and the weights' sha256 (or
    ``"random"``). Cache keys that must change when the weights do use this."""
    spec = resolve_spec(model)
    source, _target, wfile = _resolve_weights(spec, weights, progress=progress)
    sha = RANDOM if source == "random" else hub.cached_sha256(wfile)
    return {"model": spec.name, "arch": spec.arch, "format": spec.format, "config": repr(spec.config),
            "truncation": spec.truncation, "resolution": int(spec.resolution), "source": source,
            "sha256": sha}


def _is_archive(p: Path) -> bool:
    import tarfile
    import zipfile

    if p.suffix in (".pt", ".pth", ".bin"):     # torch's own zip-based pickles
        return False
    try:
        return zipfile.is_zipfile(p) or tarfile.is_tarfile(p)
    except OSError:
        return False


def _stat_key(p: Path | None) -> tuple:
    """A file's or a folder's (each visible file's) :func:`~bigganctl.weights.checksums.stat_key`."""
    if p is None:
        return ()
    p = p.resolve()
    if p.is_dir():
        return (str(p), tuple(sorted((c.name, *stat_key(c).values())
                                     for c in p.iterdir() if c.is_file() and not c.name.startswith("."))))
    return (str(p), *stat_key(p).values())


# ---------------------------------------------------------------------------------------
# The loader

_CACHE: weakref.WeakValueDictionary[tuple, torch.nn.Module] = weakref.WeakValueDictionary()
_RECENT: list[torch.nn.Module] = []     # strong references to the last few loads
_KEEP = 2


def clear_cache() -> None:
    """Forget every loaded model (the next load builds afresh)."""
    _CACHE.clear()
    _RECENT.clear()


def load_generator(model: str | os.PathLike | ModelSpec = "biggan-deep-128",
                   weights: str | os.PathLike | None = None, device: str | torch.device = "auto",
                   dtype: str | torch.dtype = "fp32", *,
                   progress: ProgressArg = True) -> torch.nn.Module:
    """``bigganctl.load_generator``: build a generator and load its weights (see the module
    docstring). ``progress``, for downloads: True (tqdm.auto bars), False, ``fn(done, total)``
    or a :class:`~bigganctl.progress.Reporter` (the CLI's rich bars).

    Raises UsageError (an unknown ``model``, a missing ``weights`` path),
    WeightsUnavailable (not cached and not downloadable), CheckpointError (a file that
    does not match its format, naming the keys; an unsafe pickle).
    """
    spec = resolve_spec(model)
    dev = resolve_device(device)
    dt = resolve_dtype(dtype)
    source, target, wfile = _resolve_weights(spec, weights, progress=as_reporter(progress))
    key = ((spec.name, spec.arch, spec.format, spec.truncation, repr(spec.config), spec.local_dir),
           source, _stat_key(target), _stat_key(wfile if wfile != target else None), str(dev), dt)
    hit = _CACHE.get(key)
    if hit is not None:
        _remember(hit)
        return hit

    cls = arch_class(spec.arch)
    if source == "random":
        G = cls(spec.config)
        G.random_init_(RANDOM_SEED)
        info: dict[str, Any] = {"source": "random", "path": None, "sha256": "random",
                                "seed": RANDOM_SEED}
    else:
        assert target is not None and wfile is not None
        config, state = foldcache.load(spec, wfile, lambda: _read(spec, wfile))   # the load cache
        config = _check_config(spec, config, wfile)
        G = _build_loaded(cls, config, state, what=f"{wfile} ({spec.name}, {spec.format} format)")
        del state
        info = {"source": source, "path": str(wfile), "sha256": hub.cached_sha256(wfile)}
    info["format"] = spec.format
    G.eval()
    G.requires_grad_(False)
    G.to(device=dev, dtype=dt,
         memory_format=G.cpu_memory_format if dev.type == "cpu" else torch.contiguous_format)
    G.spec = spec
    G.weights_info = info
    _CACHE[key] = G
    _remember(G)
    return G


def _remember(G: torch.nn.Module) -> None:
    if G in _RECENT:
        _RECENT.remove(G)
    _RECENT.append(G)
    del _RECENT[:-_KEEP]


def _read(spec: ModelSpec, target: Path) -> tuple[Any, dict[str, torch.Tensor]]:
    fmt = format_module(spec.format)
    try:
        config, state = fmt.read(target, spec)
    except (KeyError, ValueError, TypeError, RuntimeError, EOFError) as e:
        raise CheckpointError(f"{target}: cannot be read as a {spec.format} checkpoint of "
                              f"{spec.name} ({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''})"
                              ) from None
    return config, state


#: config fields that say *which* model a checkpoint is; a format may adjust others
#: (e.g. an eps its reference code hard-codes) without making it a different model
_IDENTITY_FIELDS = ("output_dim", "resolution", "z_dim", "dim_z", "num_classes", "n_classes",
                    "layers", "channel_width", "ch", "in_mult", "out_mult", "n_stats")


def _check_config(spec: ModelSpec, config: Any, target: Path) -> Any:
    """Use the checkpoint's config, provided it describes the same model as the spec."""
    if config is None:
        return spec.config
    if config == spec.config:
        return config
    if type(config) is type(spec.config):
        diffs = [f"{f} {getattr(config, f)!r} (expected {getattr(spec.config, f)!r})"
                 for f in _IDENTITY_FIELDS
                 if hasattr(config, f) and getattr(config, f) != getattr(spec.config, f)]
        if not diffs:
            return config
        detail = "; ".join(diffs[:3])
    else:
        detail = f"a {type(config).__name__}, expected a {type(spec.config).__name__}"
    raise UsageError(f"{target} is not a {spec.name} checkpoint: {detail}; pass the folder as "
                     f"--model to use its own config", param="weights")


def _build_loaded(cls: type, config: Any, state: dict[str, torch.Tensor], *, what: str) -> torch.nn.Module:
    """Build ``cls(config)`` holding a copy of ``state`` (strict: every key and shape checked).

    The module is built on the meta device and given uninitialised storage before the
    copy, which skips initialising weights only to overwrite them. Architectures with
    tensors outside their state dict (non-persistent buffers, plain tensor attributes) get
    a normal build. The tensors are always copied, never assigned: a state dict read with
    mmap must not tie the model to a file that may be rewritten.
    """
    G = None
    try:
        with torch.device("meta"):
            G = cls(config)
    except (RuntimeError, NotImplementedError, TypeError, ValueError):
        G = None
    if G is not None:
        keys = set(G.state_dict())
        if _has_meta_tensors(G, keys):
            G = None
        else:
            # not to_empty(): empty_like on meta tensors imports sympy machinery (seconds)
            G._apply(lambda t: torch.empty(t.shape, dtype=t.dtype, device="cpu"))
    if G is None:
        G = cls(config)
    check_keys(state, {k: tuple(v.shape) for k, v in G.state_dict().items()}, what=what)
    G.load_state_dict(state, strict=True)
    return G


def _has_meta_tensors(G: torch.nn.Module, state_keys: set[str] | None = None) -> bool:
    """Does ``G`` hold meta tensors that a state dict would not fill?"""
    named = dict(G.named_parameters(remove_duplicate=False))
    named.update(G.named_buffers(remove_duplicate=False))
    if state_keys is not None and any(k not in state_keys for k in named):
        return True
    for m in G.modules():
        for t in vars(m).values():
            if isinstance(t, torch.Tensor) and t.is_meta:
                return True
    return state_keys is None and any(t.is_meta for t in named.values())
