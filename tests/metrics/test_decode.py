"""Decoding an image file to 8-bit RGB (bigganctl.metrics.decode, as a folder source reads
it): a 16-bit grayscale PNG gives its 8-bit picture, every 8-bit mode decodes as
torch-fidelity's ``convert("RGB")`` does, floating-point and beyond-16-bit images are refused."""

from __future__ import annotations

import numpy as np
import pytest


def _decoded(folder):
    from bigganctl.metrics.sources import FolderSource

    src = FolderSource(folder)
    return [src._load(f).permute(1, 2, 0).numpy() for f in src.files]



def _picture(h=6, w=8):
    return (np.arange(h * w, dtype=np.uint8).reshape(h, w) * 5)



def test_a_16_bit_grayscale_png_decodes_to_its_8_bit_picture(tmp_path):
    from PIL import Image

    v8 = _picture()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    Image.fromarray(v8, "L").save(tmp_path / "a" / "x.png")
    Image.fromarray(v8.astype(np.uint16) * 257).save(tmp_path / "b" / "x.png")     # the same, 16-bit
    assert Image.open(tmp_path / "b" / "x.png").mode == "I;16"
    (a,), (b,) = _decoded(tmp_path / "a"), _decoded(tmp_path / "b")
    np.testing.assert_array_equal(a, b)              # was all 255 (a white image) for v8 > 0
    assert a[..., 0].tolist() == v8.tolist()



@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "P+transparency", "RGB", "RGBA", "CMYK", "YCbCr"])
def test_every_8_bit_mode_decodes_as_torch_fidelity_does(tmp_path, mode):
    from PIL import Image

    rgb = Image.fromarray(np.stack([_picture(), _picture()[::-1], 255 - _picture()], -1), "RGB")
    ext = "jpg" if mode in ("CMYK", "YCbCr") else "png"
    if mode == "P+transparency":
        im = rgb.convert("P")
        im.save(tmp_path / "x.png", transparency=3)
    else:
        rgb.convert(mode).save(tmp_path / f"x.{ext}")
    (got,) = _decoded(tmp_path)
    with Image.open(next(tmp_path.iterdir())) as im:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = np.asarray(im.convert("RGB"))              # torch-fidelity's ImagesPathDataset
    np.testing.assert_array_equal(got, want)



def test_a_floating_point_image_is_refused_naming_the_file(tmp_path):
    from PIL import Image

    from bigganctl.metrics.decode import UndecodableImage, to_rgb

    with pytest.raises(UndecodableImage):
        to_rgb(Image.fromarray(np.zeros((4, 4), np.float32)))
    with pytest.raises(UndecodableImage):
        to_rgb(Image.fromarray(np.full((4, 4), 70000, np.int32)))
