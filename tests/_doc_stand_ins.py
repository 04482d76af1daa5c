"""Stand-ins for what the documented commands expect to find, built lazily, once per session.

- ``home``: a ``BIGGANCTL_HOME`` with random weights in the real formats under the
  registered names (``models/<name>/<file>``), the Inception file (``inception/``) and a
  small ADM-format batch for each ``imagenet-R`` (``stats/``), each written the first
  time a command names it;
- ``user_home``: ``$HOME`` for ``~/Downloads/...`` paths;
- a working folder per doc block (its commands run there in order, as in a shell), where
  input paths the docs invent (``real_images/``, ``samples.npz``, ``inc.pth``, a
  ``--weights`` file) are created when a command needs them and no earlier command of the
  block made them.

Random files cannot match the checksums the registry pins (biggan-deep-256, the Inception
prefix ``6726825d``). :meth:`StandIns.apply` pins the stand-ins' own size and sha256 in
their place (and makes their Inception the "official" extractor, so the ADM batches'
statistics compare), so cache verification runs as it does for a user.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import zipfile
from pathlib import Path

import numpy as np

from bigganctl.weights import hub
from bigganctl.metrics import features
from bigganctl.metrics.reference import REFERENCES
from bigganctl.weights.registry import ASSETS, REGISTRY, ModelSpec

N_IMAGES = 10
ADM_SPATIAL_DIM = features.SPATIAL_DIM      # mu_s/sigma_s: sFID's 2023 dims (eval sfid|all)


def _sha256(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _images(n: int, res: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (n, 4, 4, 3)).astype(np.float32)
    reps = -(-res // 4)
    return np.kron(small, np.ones((1, reps, reps, 1), np.float32))[:, :res, :res].astype(np.uint8)


def write_adm_batch(path: Path, res: int, seed: int = 0) -> Path:
    """An ADM reference batch: ``arr_0`` uint8 NHWC, ``mu``/``sigma`` (2048), ``mu_s``/``sigma_s``."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((features.FEATURE_DIM, 16)) * 0.1
    s = rng.standard_normal((ADM_SPATIAL_DIM, 8)) * 0.1
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.npz")
    np.savez(tmp, arr_0=_images(N_IMAGES, res, seed), mu=rng.standard_normal(features.FEATURE_DIM) * 0.1,
             sigma=a @ a.T + 1e-3 * np.eye(features.FEATURE_DIM), mu_s=rng.standard_normal(ADM_SPATIAL_DIM),
             sigma_s=(s @ s.T + 1e-3 * np.eye(ADM_SPATIAL_DIM)).astype(np.float32))
    os.replace(tmp, path)
    return path


def write_image_batch(path: Path, res: int) -> Path:
    """An ADM-style sample batch (``arr_0`` uint8 NHWC, ``arr_1`` labels), as ``sample --npz``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, arr_0=_images(N_IMAGES, res, 1), arr_1=np.arange(N_IMAGES))
    return path


def write_image_folder(folder: Path, res: int) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i, im in enumerate(_images(N_IMAGES, res, 2)):
        Image.fromarray(im).save(folder / f"{i:04d}.png")
    return folder


def write_weights(spec: ModelSpec, dest: Path) -> None:
    """Random weights of ``spec`` in its own format: a folder (hf), a file, or the zip the
    file is released in (``dest`` ends in .zip and the spec names the member)."""
    import importlib

    fmt = importlib.import_module(f"bigganctl.testing.{spec.format}")
    if spec.format == "hf":
        fmt.write_random_checkpoint(dest, spec.config)
        return
    if dest.suffix == ".zip":
        member = next(f.member for f in spec.files if f.member)
        inner = dest.with_name(f".{dest.name}.member")
        fmt.write_random_checkpoint(inner, spec.config)
        with zipfile.ZipFile(dest, "w") as zf:      # stored: the weights do not compress
            zf.write(inner, member)
        inner.unlink()
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    fmt.write_random_checkpoint(dest, spec.config)


class StandIns:
    def __init__(self, root: Path):
        self.root = root
        self.home = root / "bigganctl_home"
        self.user_home = root / "home"
        self._inception: Path | None = None

    # --------------------------------------------------------------- the cache
    def inception(self) -> Path:
        if self._inception is None:
            from bigganctl.testing.inception import write_random_inception

            self._inception = write_random_inception(self.root / "inception-random.pth")
        return self._inception

    def cache_model(self, name: str) -> None:
        spec = REGISTRY[name]
        folder = self.home / "models" / name
        if not spec.files or all((folder / f.filename).is_file() for f in spec.files):
            return
        write_weights(spec, folder if spec.format == "hf" else folder / spec.files[-1].filename)

    def cache_inception(self) -> None:
        dest = self.home / "inception" / features.INCEPTION_WEIGHTS.filename
        if not dest.is_file():
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.link(self.inception(), dest)

    def cache_reference(self, name: str) -> None:
        spec = REFERENCES[name]
        dest = self.home / "stats" / spec.file.filename
        if not dest.is_file():
            write_adm_batch(dest, spec.resolution)

    # --------------------------------------------------------------- per command
    def workdir(self, block: str) -> Path:
        d = self.root / "work" / re.sub(r"[^A-Za-z0-9]+", "_", block)
        d.mkdir(parents=True, exist_ok=True)
        return d

    def prepare(self, argv: list[str], cwd: Path) -> None:
        """Fill the cache with what ``argv`` names, and create its missing input paths."""
        for tok in argv:
            if tok in REGISTRY and _needs_cache(argv):
                self.cache_model(tok)
            elif tok == "inception":
                self.cache_inception()
            elif tok in REFERENCES:
                self.cache_reference(tok)
        if _needs_cache(argv) and argv[0] in ("sample", "eval", "sweep", "interp") and "--model" not in argv \
                and "-m" not in argv and not (argv[0] == "eval" and "--images" in argv):
            self.cache_model("biggan-deep-128")
        needs_extractor = argv[0] in ("eval", "sweep") or argv[:2] == ["stats", "compute"] or (
            argv[:2] == ["stats", "pull"] and "--features" in argv)
        if needs_extractor and "--inception-weights" not in argv:
            self.cache_inception()
        for kind, tok in _inputs(argv):
            p = cwd / tok
            if not p.exists():
                self._make(kind, p, argv)

    def _make(self, kind: str, p: Path, argv: list[str]) -> None:
        res = _resolution(argv)
        if kind == "inception":
            p.parent.mkdir(parents=True, exist_ok=True)
            os.link(self.inception(), p)
        elif kind == "weights":
            write_weights(REGISTRY[_option(argv, "--model", "-m") or "biggan-deep-128"], p)
        elif kind == "ref":
            write_adm_batch(p, res)
        elif kind == "result":
            write_result(p)
        elif p.suffix == ".npz":
            write_image_batch(p, res)
        else:
            write_image_folder(p, res)

    def apply(self, monkeypatch) -> None:
        """Environment, and the stand-ins' checksums where the registry pins real ones."""
        monkeypatch.setenv("BIGGANCTL_HOME", str(self.home))
        monkeypatch.setenv("HOME", str(self.user_home))
        for name, spec in REGISTRY.items():
            pinned = self._pinned(spec.files, self.home / "models" / name)
            if pinned is not None:
                monkeypatch.setitem(REGISTRY, name, dataclasses.replace(spec, files=pinned))
        inc = ASSETS["inception"]
        pinned = self._pinned(inc.files, self.home / inc.subdir)
        if pinned is not None:
            monkeypatch.setitem(ASSETS, "inception", dataclasses.replace(inc, files=pinned))
            monkeypatch.setattr(features, "INCEPTION_WEIGHTS", pinned[0])
            monkeypatch.setattr(features, "OFFICIAL_SHA256_PREFIX", pinned[0].sha256)

    @staticmethod
    def _pinned(files, folder: Path):
        if not any(f.size or f.sha256 for f in files) or not all((folder / f.filename).is_file() for f in files):
            return None
        out = []
        for f in files:
            p = folder / f.filename
            digest = hub.cached_sha256(p)
            sha = None if f.sha256 is None else digest[:len(f.sha256)]
            out.append(dataclasses.replace(f, sha256=sha, size=None if f.size is None else p.stat().st_size))
        return tuple(out)


def _needs_cache(argv: list[str]) -> bool:
    """Does the command read the models it names from the cache? (``models info`` and
    ``list`` only report what is there.)"""
    if argv[0] == "models":
        return argv[1:2] in (["pull"], ["verify"])
    return _option(argv, "--weights", "-w") is None


def _option(argv: list[str], *names: str) -> str | None:
    for k, tok in enumerate(argv[:-1]):
        if tok in names:
            return argv[k + 1]
    return None


def _resolution(argv: list[str]) -> int:
    ref = _option(argv, "--ref")
    if ref in REFERENCES:
        return REFERENCES[ref].resolution
    model = _option(argv, "--model", "-m")
    return REGISTRY[model].resolution if model in REGISTRY else 128


def _inputs(argv: list[str]) -> list[tuple[str, str]]:
    """``(kind, path)`` of every input path of ``argv``: kind is inception | weights | ref | images."""
    out = []
    for k, tok in enumerate(argv[1:], start=1):
        opt = argv[k - 1]
        if opt == "--inception-weights":
            out.append(("inception", tok))
        elif opt in ("--weights", "-w") and tok != "random":
            out.append(("weights", tok))
        elif opt == "--ref" and tok not in REFERENCES:
            out.append(("ref", tok))
        elif opt == "--images" and argv[0] == "eval":
            out.append(("images", tok))
    if argv[0] == "compare":
        out += [("result", tok) for tok in _positionals(argv[1:], {"--tol", "--noise", "--summary"})]
    if argv[:2] == ["stats", "compute"] and len(argv) > 2:
        out.append(("images", argv[2]))
    if argv[:2] == ["stats", "info"] and len(argv) > 2 and argv[2] not in REFERENCES:
        out.append(("ref", argv[2]))
    return out


def _positionals(args: list[str], valued: set[str]) -> list[str]:
    out, skip = [], False
    for tok in args:
        if skip:
            skip = False
        elif tok in valued:
            skip = True
        elif not tok.startswith("-"):
            out.append(tok)
    return out


def write_result(p: Path) -> Path:
    """A result file for ``compare``: examples/ci's committed eval or bench document (by the
    name: ``*bench*``), or a sweep (a folder, or a ``.csv``) made from the eval's numbers."""
    import json
    import shutil

    from bigganctl.media.plot import write_csv

    baseline = Path(__file__).resolve().parents[1] / "examples" / "ci" / "baseline"
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.suffix == ".json":
        shutil.copyfile(baseline / ("bench.json" if "bench" in p.name else "eval.json"), p)
        return p
    ev = json.loads((baseline / "eval.json").read_text())
    rows = [{"psi": psi, "convention": ev["trunc_convention"], "fid": ev["fid"] * psi, "is_mean": ev["is_mean"],
             "is_std": ev["is_std"], "kid_mean": None, "kid_std": None, "n": ev["n"], "seconds": ev["seconds"]}
            for psi in (0.5, 1.0)]
    if p.suffix == ".csv":
        write_csv(p, rows, multi=False)
        return p
    p.mkdir(parents=True, exist_ok=True)
    doc = {"kind": "bigganctl.sweep", "psis": [0.5, 1.0], "rows": rows,
           "models": [{"model": ev["model"], "weights": ev["weights"], "convention": ev["trunc_convention"],
                       "resolution": ev["resolution"]}],
           "settings": {"n": ev["n"], "seed": 0, "seeds": f"0-{ev['n'] - 1}", "classes": ev["classes"],
                        "metrics": ["fid", "is"], "ref": ev["ref"], "extractor_id": ev["extractor_id"],
                        "inception_weights_sha256": ev["inception_weights_sha256"], "dtype": ev["dtype"],
                        "device": ev["device"], "is_splits": ev["is_splits"], "strip_columns": 0},
           "files": {"csv": "sweep.csv", "json": "sweep.json", "plot": "sweep.png", "manifest": "manifest.json"},
           "version": ev["version"], "metric_version": ev.get("metric_version", 1)}
    (p / "sweep.json").write_text(json.dumps(doc, indent=2))
    return p
