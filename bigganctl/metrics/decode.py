"""Decoding one image file to 8-bit RGB, as torch-fidelity would, and file names shown.

torch-fidelity reads a folder with ``Image.open(path).convert("RGB")``; bigganctl does the
same for every mode where that gives the picture (``1``, ``L``, ``LA``, ``P`` with or
without transparency, ``PA``, ``RGB``, ``RGBA``, ``CMYK``, ``YCbCr``...: alpha is dropped,
not composited, exactly as there). Where Pillow's conversion does not give the picture:

- 16-bit grayscale (``I;16``, ``I;16B``, ``I;16L``, ``I;16N``, and ``I`` with values in
  [0, 65535]): Pillow clips to 255, a white image. bigganctl keeps the high byte
  (``v >> 8``), which is what Pillow does for 16-bit RGB and RGBA PNGs, so a 16-bit
  picture gives the same pixels as its 8-bit version (``v8 * 257``).
- floating point (``F``) and 32-bit integers beyond 16 bits: no standard 8-bit reading;
  refused (the caller turns it into exit 2 naming the file).
"""

from __future__ import annotations

import os
import warnings

import numpy as np

SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")


class UndecodableImage(ValueError):
    """An image mode without a defined 8-bit RGB reading."""


def to_rgb(im):
    """PIL image -> 8-bit ``RGB`` PIL image (see the module docstring)."""
    from PIL import Image

    if im.mode in SIXTEEN_BIT or im.mode == "I":
        a = np.asarray(im)
        if im.mode == "I" and a.size and (int(a.min()) < 0 or int(a.max()) > 65535):
            raise UndecodableImage(f"32-bit integer pixels ({int(a.min())}..{int(a.max())}) have no 8-bit "
                                   "reading; save it as 8- or 16-bit")
        return Image.fromarray((a.astype(np.uint32) >> 8).astype(np.uint8), "L").convert("RGB")
    if im.mode == "F":
        raise UndecodableImage("floating-point pixels (mode F) have no 8-bit reading; save it as 8-bit RGB")
    with warnings.catch_warnings():          # "Palette images with Transparency ... RGBA": as torch-fidelity
        warnings.simplefilter("ignore")
        return im.convert("RGB")


def shown(path: str | os.PathLike) -> str:
    """A path fit for a message: bytes that are not UTF-8 appear as ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")
