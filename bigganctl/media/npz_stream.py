"""An ADM-style ``.npz`` written in place, batch by batch, in constant memory.

The archive is an uncompressed ZIP64 file with two members, ``arr_0.npy`` (uint8
``[N, H, W, 3]``) and ``arr_1.npy`` (int64 ``[N]`` labels). N and the image size are known
before the first image, so every byte but one CRC is known up front: :func:`create` writes
the headers, the labels and the central directory and sizes the file (sparse: rows not yet
written cost no disk); :func:`write_rows` puts rows at their offsets (any process, any
order); :func:`finalize` stores the CRC of ``arr_0.npy``, combined from the CRCs of the
contiguous ranges the processes wrote (:func:`crc32_combine`), so nothing is read back.

Readers: ``np.load`` (zipfile), and streaming readers such as ADM's evaluator (zipfile +
``np.lib.format`` header parsing, then ``read`` in chunks). Layout (all little-endian)::

    local header arr_0 (+ZIP64 extra) | npy header | rows ...
    local header arr_1 (+ZIP64 extra) | npy header | labels
    central directory (2 entries, ZIP64 extras) | ZIP64 end record | ZIP64 locator | end record

Timestamps are fixed (1980-01-01), so the same images give the same bytes.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_LOCAL = struct.Struct("<IHHHHHIIIHH")          # 30 bytes
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")   # 46 bytes
_NAMES = (b"arr_0.npy", b"arr_1.npy")
_VERSION = 45                                    # ZIP64
_DOS_DATE = (0 << 9) | (1 << 5) | 1              # 1980-01-01
_FFFF32 = 0xFFFFFFFF
_LOCAL_EXTRA = 4 + 16                            # ZIP64 extra: sizes
_CENTRAL_EXTRA = 4 + 24                          # ZIP64 extra: sizes and offset
_TAIL = 56 + 20 + 22                             # ZIP64 end record, locator, end record


def _npy_header(shape: tuple[int, ...], descr: str) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


@dataclass(frozen=True)
class NpzLayout:
    """Byte offsets of an archive of ``n`` images of ``height x width x 3``."""

    n: int
    height: int
    width: int

    @property
    def row(self) -> int:
        return self.height * self.width * 3

    @property
    def headers(self) -> tuple[bytes, bytes]:
        return (_npy_header((self.n, self.height, self.width, 3), "|u1"), _npy_header((self.n,), "<i8"))

    def _local_size(self, k: int) -> int:
        return _LOCAL.size + len(_NAMES[k]) + _LOCAL_EXTRA

    @property
    def member_sizes(self) -> tuple[int, int]:
        h0, h1 = self.headers
        return len(h0) + self.n * self.row, len(h1) + 8 * self.n

    @property
    def offsets(self) -> tuple[int, int]:
        """Where each member's local header starts."""
        return 0, self._local_size(0) + self.member_sizes[0]

    @property
    def data(self) -> int:
        """Where row 0 of ``arr_0`` starts."""
        return self._local_size(0) + len(self.headers[0])

    @property
    def central(self) -> int:
        return self.offsets[1] + self._local_size(1) + self.member_sizes[1]

    @property
    def size(self) -> int:
        """The size of the finished file in bytes."""
        return self.central + sum(_CENTRAL.size + len(nm) + _CENTRAL_EXTRA for nm in _NAMES) + _TAIL

    def header_crc(self) -> int:
        return zlib.crc32(self.headers[0])


def _local_header(name: bytes, crc: int, size: int) -> bytes:
    head = _LOCAL.pack(0x04034B50, _VERSION, 0, 0, 0, _DOS_DATE, crc, _FFFF32, _FFFF32, len(name), _LOCAL_EXTRA)
    return head + name + struct.pack("<HHQQ", 1, 16, size, size)


def _central_entry(name: bytes, crc: int, size: int, offset: int) -> bytes:
    head = _CENTRAL.pack(0x02014B50, _VERSION, _VERSION, 0, 0, 0, _DOS_DATE, crc, _FFFF32, _FFFF32, len(name),
                         _CENTRAL_EXTRA, 0, 0, 0, 0, _FFFF32)
    return head + name + struct.pack("<HHQQQ", 1, 24, size, size, offset)


def _tail(central: int, central_size: int) -> bytes:
    end64 = central + central_size
    rec64 = struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, _VERSION, _VERSION, 0, 0, 2, 2, central_size, central)
    locator = struct.pack("<IIQI", 0x07064B50, 0, end64, 1)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 2, 2, min(central_size, _FFFF32), min(central, _FFFF32), 0)
    return rec64 + locator + end


def _directory(layout: NpzLayout, crcs: tuple[int, int]) -> bytes:
    sizes, offsets = layout.member_sizes, layout.offsets
    cd = b"".join(_central_entry(_NAMES[k], crcs[k], sizes[k], offsets[k]) for k in (0, 1))
    return cd + _tail(layout.central, len(cd))


def create(path: str | os.PathLike, layout: NpzLayout, labels: np.ndarray) -> None:
    """Write everything but the rows and ``arr_0``'s CRC, and size the file (sparse)."""
    lab = np.ascontiguousarray(labels, dtype="<i8")
    if lab.shape != (layout.n,):
        raise ValueError(f"{lab.shape[0]} labels for {layout.n} images")
    h0, h1 = layout.headers
    body1 = h1 + lab.tobytes()
    crc1 = zlib.crc32(body1)
    sizes = layout.member_sizes
    with open(path, "wb") as fh:
        fh.write(_local_header(_NAMES[0], 0, sizes[0]) + h0)
        fh.seek(layout.offsets[1])
        fh.write(_local_header(_NAMES[1], crc1, sizes[1]) + body1)
        fh.write(_directory(layout, (0, crc1)))
        fh.truncate(layout.size)
        fh.flush()
        os.fsync(fh.fileno())


def write_rows(fd: int, layout: NpzLayout, start: int, rows: np.ndarray, *, crc: int = 0) -> int:
    """Write uint8 NHWC ``rows`` as rows ``start..`` of the open file ``fd``; returns
    ``zlib.crc32(rows, crc)`` (a process's running CRC over its contiguous range)."""
    data = memoryview(np.ascontiguousarray(rows, dtype=np.uint8)).cast("B")
    if len(data) != rows.shape[0] * layout.row:
        raise ValueError(f"rows of {rows.shape[1:]} do not fit a {layout.height}x{layout.width}x3 archive")
    pos, view = layout.data + start * layout.row, data
    while view:
        k = os.pwrite(fd, view, pos)
        pos, view = pos + k, view[k:]
    return zlib.crc32(data, crc)


def rows_crc(path: str | os.PathLike, layout: NpzLayout, lo: int, hi: int, chunk: int = 1 << 22) -> int:
    """CRC32 of rows ``lo..hi-1`` as they are on disk (what a resumed run trusts)."""
    crc, left = 0, (hi - lo) * layout.row
    with open(path, "rb") as fh:
        fh.seek(layout.data + lo * layout.row)
        while left:
            block = fh.read(min(chunk, left))
            if not block:
                raise ValueError(f"{path} is shorter than its layout")
            crc, left = zlib.crc32(block, crc), left - len(block)
    return crc


def finalize(path: str | os.PathLike, layout: NpzLayout, rows_crc_all: int) -> None:
    """Store ``arr_0.npy``'s CRC (npy header + ``rows_crc_all``, the CRC of every row)."""
    crc0 = crc32_combine(layout.header_crc(), rows_crc_all, layout.n * layout.row)
    with open(path, "r+b") as fh:
        fh.seek(14)                                   # the local header's CRC field
        fh.write(struct.pack("<I", crc0))
        fh.seek(layout.central + 16)                  # the central entry's CRC field
        fh.write(struct.pack("<I", crc0))
        fh.flush()
        os.fsync(fh.fileno())


def read_member_info(path: str | Path) -> dict[str, tuple[int, int]]:
    """``{name: (data offset, size)}`` from the local headers (a check for the tests and
    for readers without zipfile)."""
    out = {}
    with open(path, "rb") as fh:
        for _ in _NAMES:
            head = fh.read(_LOCAL.size)
            sig, *_r, name_len, extra_len = _LOCAL.unpack(head)
            if sig != 0x04034B50:
                break
            name = fh.read(name_len).decode()
            extra = fh.read(extra_len)
            size = struct.unpack("<Q", extra[4:12])[0]
            out[name] = (fh.tell(), size)
            fh.seek(size, os.SEEK_CUR)
    return out


# ---------------------------------------------------------------- CRC32 combination (zlib's method)

def _gf2_times(mat: list[int], vec: int) -> int:
    s, i = 0, 0
    while vec:
        if vec & 1:
            s ^= mat[i]
        vec >>= 1
        i += 1
    return s


def _gf2_square(mat: list[int]) -> list[int]:
    return [_gf2_times(mat, mat[k]) for k in range(32)]


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC32 of ``A + B`` from ``crc32(A)``, ``crc32(B)`` and ``len(B)`` (zlib's
    ``crc32_combine``: ``len(B)`` zero bytes applied to ``crc1`` by GF(2) matrix squaring)."""
    if len2 <= 0:
        return crc1
    odd = [0xEDB88320] + [1 << k for k in range(31)]   # the operator for one zero bit
    even = _gf2_square(odd)                              # two zero bits
    odd = _gf2_square(even)                              # four zero bits
    while True:
        even = _gf2_square(odd)
        if len2 & 1:
            crc1 = _gf2_times(even, crc1)
        len2 >>= 1
        if not len2:
            break
        odd = _gf2_square(even)
        if len2 & 1:
            crc1 = _gf2_times(odd, crc1)
        len2 >>= 1
        if not len2:
            break
    return crc1 ^ crc2
