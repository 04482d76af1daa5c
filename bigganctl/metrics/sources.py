"""What is evaluated: generated samples, image folders and ``.npz`` batches.

Each source yields ``(offset, uint8 [b, 3, H, W])`` batches in a fixed order, so sample i is
the same image whatever the batch size or process count, and a run can resume at any
offset.

- Generator (:class:`GeneratorSource`): sample ``i`` = (class plan ``labels[i]``, seed
  ``seed + i``, psi) through :func:`bigganctl.generate.iter_uint8`.
- Folder: png / jpg / jpeg / webp found recursively, ordered by sorted real path (the
  order torch-fidelity uses), read with Pillow and converted to RGB. All images must have
  one size unless a resize is chosen.
- ``.npz``: ``arr_0`` uint8 NHWC (ADM's batches and ``bigganctl sample --npz``; NCHW is
  accepted too), streamed from the archive without loading it whole.

Preprocessing (``Preprocess``):

- ``resize=R``: torch-fidelity's ``samples_resize_and_crop``: bilinear resize of the short
  side to R (torchvision ``Resize``), then a centred R x R crop.
- ``center_crop=R``: the ImageNet preparation of ADM's reference batches: halve with a box
  filter while the short side is >= 2R, bicubic resize of the short side to R, then a
  centred R x R crop.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterator

import numpy as np
import torch

from ..checks import check_int
from .decode import shown, to_rgb
from ..errors import UsageError
from ..models.base import model_name
from ..generate import iter_uint8
from ..runtime.device import dtype_name

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp")


@dataclass(frozen=True)
class Preprocess:
    resize: int | None = None
    center_crop: int | None = None

    def __post_init__(self) -> None:
        if self.resize is not None and self.center_crop is not None:
            raise UsageError("choose one of --resize and --center-crop", param="resize")
        for opt, v in (("resize", self.resize), ("center_crop", self.center_crop)):
            check_int(v, opt, optional=True)

    @property
    def size(self) -> int | None:
        return self.resize or self.center_crop

    def describe(self) -> str:
        if self.resize:
            return f"resize-short-side-bilinear+center-crop {self.resize} (torch-fidelity samples_resize_and_crop)"
        if self.center_crop:
            return f"imagenet-adm: box-halving + bicubic short side + center crop {self.center_crop}"
        return "none"

    def apply(self, img):  # PIL.Image -> PIL.Image
        if self.resize:
            from torchvision.transforms import CenterCrop, Resize

            return CenterCrop(self.resize)(Resize(self.resize)(img))
        if self.center_crop:
            return adm_center_crop(img, self.center_crop)
        return img


def adm_center_crop(img, size: int):
    """ADM's ImageNet preparation: box-halve while short side >= 2*size, bicubic to short
    side ``size``, centred crop ``size`` x ``size``."""
    from PIL import Image

    while min(img.size) >= 2 * size:
        img = img.resize(tuple(x // 2 for x in img.size), resample=Image.BOX)
    scale = size / min(img.size)
    img = img.resize(tuple(round(x * scale) for x in img.size), resample=Image.BICUBIC)
    w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    return img.crop((left, top, left + size, top + size))


class ImageSource:
    """Base: ``n`` images of ``size`` (H, W); ``batches(start, stop, bs)``; ``identity()``."""

    n: int
    size: tuple[int, int]
    kind: str

    @property
    def resolution(self) -> int | list[int]:
        h, w = self.size
        return h if h == w else [h, w]

    def batches(self, start: int, stop: int, batch_size: int) -> Iterator[tuple[int, torch.Tensor]]:
        raise NotImplementedError

    def identity(self) -> dict:
        """What decides the pixels (for checkpoint keys)."""
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


class GeneratorSource(ImageSource):
    """Generated samples as uint8 batches: sample ``i`` = (labels[i], seed + i, psi)."""

    kind = "model"

    def __init__(self, G: torch.nn.Module, labels: torch.Tensor, seed: int, psi: float):
        self.G, self.labels, self.seed, self.psi = G, labels, int(seed), float(psi)
        self.n = int(labels.shape[0])
        self.size = (G.resolution, G.resolution)

    @property
    def resolution(self) -> int:
        return int(self.G.resolution)

    def batches(self, start: int, stop: int, batch_size: int) -> Iterator[tuple[int, torch.Tensor]]:
        seeds = list(range(self.seed + start, self.seed + stop))
        for off, x in iter_uint8(self.G, self.labels[start:stop], seeds, self.psi, batch_size=batch_size,
                                 on_device=True):      # the extractor takes them on the device
            yield start + off, x

    def describe(self) -> str:
        return model_name(self.G)


def fingerprint(G: torch.nn.Module) -> str:
    """The weights' sha256, or (random / in-memory weights) a hash of the state dict."""
    info = getattr(G, "weights_info", None) or {}
    if info.get("sha256") and info.get("sha256") != "random":
        return str(info["sha256"])
    h = hashlib.sha256(type(G).__qualname__.encode())
    for k, v in G.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())   # 0-d too
    return h.hexdigest()


def generator_dtype(G: torch.nn.Module, default: str) -> str:
    """fp32 | bf16 | fp16 of the generator's parameters (``default`` when it has none)."""
    p = next(iter(G.parameters()), None)
    if p is not None and p.dtype in (torch.float32, torch.bfloat16, torch.float16):
        return dtype_name(p.dtype)
    return default


def find_images(root: Path) -> list[Path]:
    files = []
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            if os.path.splitext(name)[1].lower() in IMAGE_EXTS:
                files.append(Path(os.path.realpath(os.path.join(dirpath, name))))
    return sorted(files, key=str)


class FolderSource(ImageSource):
    kind = "folder"

    def __init__(self, root: str | os.PathLike, preprocess: Preprocess = Preprocess(), *, option: str = "images",
                 workers: int = 0):
        from PIL import Image, UnidentifiedImageError

        self.root = Path(root)
        self.option = option
        self.pre = preprocess
        self.workers = int(workers)
        if not self.root.is_dir():
            raise UsageError(f"{self.root} is not a folder", param=option)
        self.files = find_images(self.root)
        if not self.files:
            raise UsageError(f"no images ({', '.join(e[1:] for e in IMAGE_EXTS)}) found in {self.root}", param=option)
        self.n = len(self.files)
        sizes: dict[tuple[int, int], Path] = {}
        for f in self.files:          # headers only: cheap, and fails early on unreadable files
            try:
                with Image.open(f) as im:
                    sizes.setdefault((im.size[1], im.size[0]), f)
            except (UnidentifiedImageError, OSError) as e:
                raise UsageError(f"cannot read image {shown(f)}: {_reason(e)}", param=option) from None
        if self.pre.size:
            self.size = (self.pre.size, self.pre.size)
        elif len(sizes) > 1:
            ex = ", ".join(f"{w}x{h} ({shown(p.name)})" for (h, w), p in list(sizes.items())[:3])
            raise UsageError(f"images have {len(sizes)} different sizes ({ex}); pass --resize R or "
                             "--center-crop R", param=option)
        else:
            self.size = next(iter(sizes))

    def _load(self, f: Path) -> torch.Tensor:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(f) as im:
                img = self.pre.apply(to_rgb(im))
                arr = np.asarray(img, dtype=np.uint8)
        except (UnidentifiedImageError, OSError, ValueError) as e:
            raise UsageError(f"cannot read image {shown(f)}: {_reason(e)}", param=self.option) from None
        if arr.shape[:2] != self.size:
            raise UsageError(f"{shown(f)} is {arr.shape[1]}x{arr.shape[0]}, the others "
                             f"{self.size[1]}x{self.size[0]}", param=self.option)
        return torch.from_numpy(arr.copy()).permute(2, 0, 1)

    def batches(self, start, stop, batch_size):
        """In this process, or (``workers`` > 0) decoded and resized by DataLoader worker
        processes, in order, at most ``2 * workers`` batches ahead (memory stays bounded)."""
        if self.workers <= 0:
            for lo in range(start, stop, batch_size):
                hi = min(lo + batch_size, stop)
                yield lo, torch.stack([self._load(f) for f in self.files[lo:hi]])
            return
        from torch.utils.data import DataLoader

        loader = DataLoader(_Files(self, start, stop), batch_size=batch_size, num_workers=self.workers,
                            collate_fn=_stack_or_error, prefetch_factor=2)
        lo = start
        for batch in loader:
            if isinstance(batch, BaseException):
                raise batch
            yield lo, batch
            lo += batch.shape[0]

    def identity(self) -> dict:
        h = hashlib.sha256()
        for f in self.files:
            st = f.stat()
            h.update(os.fsencode(f) + f"\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return {"kind": self.kind, "path": str(self.root.resolve()), "files": h.hexdigest(),
                "preprocess": self.pre.describe()}

    def describe(self) -> str:
        return str(self.root)


class _Files:
    """Images ``start..stop-1`` of a folder as a map-style dataset for DataLoader workers; a
    file that cannot be read comes back as its UsageError (raised in the main process with
    its own message, not as a worker traceback)."""

    def __init__(self, src: FolderSource, start: int, stop: int):
        self.src, self.start, self.stop = src, start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, i: int):
        try:
            return self.src._load(self.src.files[self.start + i])
        except UsageError as e:
            return e


def _stack_or_error(items: list):
    for x in items:
        if isinstance(x, BaseException):
            return x
    return torch.stack(items)


class NpzSource(ImageSource):
    """``arr_0`` of an ``.npz``, read in chunks straight from the archive."""

    kind = "npz"

    def __init__(self, path: str | os.PathLike, preprocess: Preprocess = Preprocess(), *,
                 option: str = "images", key: str = "arr_0"):
        self.path = Path(path)
        self.option = option
        self.key = key
        self.pre = preprocess
        if not self.path.is_file():
            raise UsageError(f"{self.path} does not exist", param=option)
        with self._open() as (shape, dtype, _fortran, _fh):
            pass
        if dtype != np.uint8:
            raise UsageError(f"{self.path}: {key} must be uint8 images, got {dtype}", param=option)
        if len(shape) != 4 or 3 not in (shape[1], shape[3]):
            raise UsageError(f"{self.path}: {key} must be [N, H, W, 3] (or [N, 3, H, W]), got {list(shape)}",
                             param=option)
        self.nhwc = shape[3] == 3
        self.shape = shape
        self.n = int(shape[0])
        if self.n == 0:
            raise UsageError(f"{self.path}: {key} holds no images", param=option)
        native = (shape[1], shape[2]) if self.nhwc else (shape[2], shape[3])
        self.size = (self.pre.size, self.pre.size) if self.pre.size else native

    class _Reader:
        def __init__(self, src: NpzSource):
            self.src = src

        def __enter__(self):
            try:
                self.zf = zipfile.ZipFile(self.src.path)
                name = f"{self.src.key}.npy"
                if name not in self.zf.namelist():
                    raise UsageError(f"{self.src.path} has no {self.src.key!r} array (keys: "
                                     f"{', '.join(n[:-4] for n in self.zf.namelist())})", param=self.src.option)
                self.fh = self.zf.open(name)
                version = np.lib.format.read_magic(self.fh)
                shape, fortran, dtype = (np.lib.format.read_array_header_1_0(self.fh) if version == (1, 0)
                                         else np.lib.format.read_array_header_2_0(self.fh))
            except (zipfile.BadZipFile, OSError, ValueError) as e:
                raise UsageError(f"{self.src.path} is not a readable .npz ({e})", param=self.src.option) from None
            if fortran:
                raise UsageError(f"{self.src.path}: Fortran-ordered arrays are not supported", param=self.src.option)
            return shape, dtype, fortran, self.fh

        def __exit__(self, *exc):
            self.zf.close()

    def _open(self):
        return NpzSource._Reader(self)

    def batches(self, start, stop, batch_size):
        row = int(np.prod(self.shape[1:]))
        with self._open() as (_shape, _dtype, _f, fh):
            if start:
                fh.seek(start * row, os.SEEK_CUR)
            for lo in range(start, stop, batch_size):
                hi = min(lo + batch_size, stop)
                buf = fh.read((hi - lo) * row)
                if len(buf) != (hi - lo) * row:
                    raise UsageError(f"{self.path}: {self.key} is truncated", param=self.option)
                arr = np.frombuffer(buf, dtype=np.uint8).reshape((hi - lo, *self.shape[1:]))
                x = torch.from_numpy(arr.copy())
                x = x.permute(0, 3, 1, 2) if self.nhwc else x
                if self.pre.size:
                    x = self._preprocess(x)
                yield lo, x.contiguous()

    def _preprocess(self, x: torch.Tensor) -> torch.Tensor:
        from PIL import Image

        out = [torch.from_numpy(np.asarray(self.pre.apply(Image.fromarray(im.permute(1, 2, 0).numpy())),
                                           dtype=np.uint8).copy()).permute(2, 0, 1) for im in x]
        return torch.stack(out)

    def identity(self) -> dict:
        st = self.path.stat()
        return {"kind": self.kind, "path": str(self.path.resolve()), "size": st.st_size,
                "mtime_ns": st.st_mtime_ns, "preprocess": self.pre.describe()}

    def describe(self) -> str:
        return str(self.path)


def open_images(path: str | os.PathLike, preprocess: Preprocess = Preprocess(), *,
                option: str = "images", workers: int = 0) -> ImageSource:
    """A folder or an ``.npz`` of images (``workers``: decoding processes for a folder)."""
    p = Path(path)
    if p.is_dir():
        return FolderSource(p, preprocess, option=option, workers=workers)
    if p.suffix.lower() == ".npz":
        return NpzSource(p, preprocess, option=option)
    if not p.exists():
        raise UsageError(f"{p} does not exist", param=option)
    raise UsageError(f"{p} is neither a folder of images nor an .npz batch", param=option)


def _reason(e: Exception) -> str:
    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
    return msg[:200]
