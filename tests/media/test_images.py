"""Image outputs (bigganctl.media.images): grid geometry and placement, formats by extension,
atomic writes, the ADM-style .npz, file names."""

import numpy as np
import pytest
import torch
from PIL import Image

from bigganctl.api.sample import default_out
from bigganctl.classes import resolve_classes
from bigganctl.errors import RuntimeFailure, UsageError
from bigganctl.media.images import image_format, make_grid, manifest_path, sample_filename, write_image, write_npz


def test_grid_geometry_and_placement():
    imgs = torch.arange(12, dtype=torch.uint8).view(12, 1, 1, 1).expand(12, 3, 16, 16).contiguous() + 1
    g = make_grid(imgs, nrow=4)
    assert g.shape == (3, 3 * 18 + 2, 4 * 18 + 2)
    for i in range(12):
        r, k = divmod(i, 4)
        tile = g[:, 2 + r * 18: 2 + r * 18 + 16, 2 + k * 18: 2 + k * 18 + 16]
        assert torch.all(tile == i + 1)
    assert int(g.sum()) == sum((i + 1) * 3 * 256 for i in range(12))   # padding is 0
    g5 = make_grid(imgs, nrow=5)                   # 3 rows, the last one partly empty
    assert g5.shape == (3, 3 * 18 + 2, 5 * 18 + 2)
    assert torch.all(g5[:, 2 + 2 * 18:, 2 + 2 * 18:] == 0)
    assert make_grid(imgs[:2], nrow=8).shape == (3, 18 + 2, 2 * 18 + 2)
    with pytest.raises(ValueError):
        make_grid(imgs.float(), nrow=2)


@pytest.mark.parametrize("ext", [".png", ".webp", ".jpg", ".jpeg", ".PNG"])
def test_write_image_by_extension(tmp_path, ext):
    img = (torch.rand(3, 20, 24, generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)
    p = write_image(tmp_path / "sub" / f"a{ext}", img)
    back = torch.from_numpy(np.array(Image.open(p).convert("RGB"))).permute(2, 0, 1)
    assert back.shape == img.shape
    if ext.lower() in (".png", ".webp"):
        assert torch.equal(back, img)              # lossless
    assert [f.name for f in p.parent.iterdir()] == [p.name]    # no temporary left


@pytest.mark.parametrize("name", ["g.bmpx", "g", "g.gif", "g.npz"])
def test_unknown_image_extension(name):
    with pytest.raises(UsageError) as e:
        image_format(name)
    assert e.value.param == "out" and name in str(e.value)


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", boom)
    with pytest.raises(RuntimeFailure):
        write_image(tmp_path / "a.png", torch.zeros(3, 4, 4, dtype=torch.uint8))
    assert list(tmp_path.iterdir()) == []


def test_npz_is_adm_style(tmp_path):
    imgs = torch.randint(0, 256, (5, 3, 8, 8), dtype=torch.uint8)
    write_npz(tmp_path / "b.npz", imgs, [207, 1, 1, 3, 999])
    with np.load(tmp_path / "b.npz") as f:
        assert sorted(f.files) == ["arr_0", "arr_1"]
        assert f["arr_0"].dtype == np.uint8 and f["arr_0"].shape == (5, 8, 8, 3)
        assert np.array_equal(f["arr_0"], imgs.permute(0, 2, 3, 1).numpy())
        assert f["arr_1"].dtype == np.int64 and f["arr_1"].tolist() == [207, 1, 1, 3, 999]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.npz"]


def test_names():
    assert manifest_path("out/g.png").as_posix() == "out/g.png.json"
    assert sample_filename(207, "golden_retriever", 3) == "207_golden_retriever_seed0003.png"
    cls = resolve_classes([207, 1])
    assert default_out("biggan-deep-128", cls, [0, 1, 2, 3], 0.5).as_posix() == \
        "samples/biggan-deep-128_207-1_psi0.5_seeds0-3.png"
