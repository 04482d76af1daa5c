"""The streamed .npz writer (bigganctl.media.npz_stream): CRC32 combination equals zlib's, a ZIP64
archive beyond 4 GiB reads back."""

from __future__ import annotations

import os
import zlib

import numpy as np

from bigganctl.media import npz_stream


def test_crc32_combine_equals_zlib():
    a, b = os.urandom(1000), os.urandom(333)
    assert npz_stream.crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)
    assert npz_stream.crc32_combine(zlib.crc32(a), zlib.crc32(b""), 0) == zlib.crc32(a)


def test_zip64_beyond_4_gib_is_readable(tmp_path):
    """50k images at 256 px (9.8 GB, sparse: no rows written): zipfile finds the labels
    member past 4 GiB and parses arr_0's npy header, as np.load and ADM's reader do."""
    import zipfile

    lay = npz_stream.NpzLayout(50_000, 256, 256)
    p = tmp_path / "big.npz"
    npz_stream.create(p, lay, np.arange(50_000) % 1000)
    assert p.stat().st_size == lay.size > 2**33 and p.stat().st_blocks * 512 < 2**22
    with zipfile.ZipFile(p) as zf:
        info = {i.filename: i for i in zf.infolist()}
        assert info["arr_1.npy"].header_offset > 2**32
        lab = np.lib.format.read_array(zf.open("arr_1.npy"))
        assert lab.shape == (50_000,) and lab[1001] == 1
        f = zf.open("arr_0.npy")
        assert np.lib.format.read_magic(f) == (1, 0)
        assert np.lib.format.read_array_header_1_0(f) == ((50_000, 256, 256, 3), False, np.dtype("uint8"))
