"""Hostile inputs that define a metric: seeds beyond 2**32, a 16-bit image through the
features, file names that are not UTF-8, sample counts beyond memory. How each image mode
decodes is in tests/metrics/test_decode.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bigganctl.errors import UsageError
from bigganctl.noise import resolve_seeds, seed_uniforms, truncated_noise


# ----------------------------------------------------------------------------- seeds beyond 32 bits

def test_seeds_do_not_alias_modulo_2_to_the_32():
    z = truncated_noise([2 ** 32, 0, 2 ** 33 + 7, 7, 2 ** 63 - 1, 2 ** 32 - 1], z_dim=16, psi=1.0)
    assert not torch.equal(z[0], z[1]) and not torch.equal(z[2], z[3])
    assert len({tuple(r.tolist()) for r in z}) == 6
    assert z.abs().max() <= 2.0                                     # still TruncNorm(-2, 2)


def test_seeds_below_2_to_the_32_keep_their_noise():
    for s in (0, 1, 12345, 2 ** 32 - 1):                            # what every earlier version drew
        g = torch.Generator().manual_seed(s)
        assert torch.equal(seed_uniforms(s, 8), torch.rand(8, generator=g, dtype=torch.float64))


def test_large_seed_uniforms_are_uniform_and_reproducible():
    u = seed_uniforms(2 ** 40 + 3, 20000)
    assert u.dtype == torch.float64 and 0 <= float(u.min()) and float(u.max()) < 1
    assert abs(float(u.mean()) - 0.5) < 0.01
    assert torch.equal(u, seed_uniforms(2 ** 40 + 3, 20000))


def test_seeds_beyond_2_to_the_63_are_refused():
    with pytest.raises(UsageError) as e:
        resolve_seeds(seeds=[2 ** 63])
    assert e.value.param == "seeds"
    with pytest.raises(UsageError) as e:
        resolve_seeds(n=2, seed=2 ** 63 - 1)
    assert e.value.param == "seed"


# ----------------------------------------------------------------------------- image modes and file names

def test_a_16_bit_grayscale_png_gives_the_features_of_its_8_bit_version(cli, tmp_path):
    from PIL import Image

    from _metrics_util import inception_file

    rng = np.random.default_rng(0)
    for d, scale in (("a8", 1), ("a16", 257)):
        (tmp_path / d).mkdir()
        for i in range(2):
            v = rng.integers(0, 256, (16, 16), dtype=np.uint16) if d == "a8" else np.asarray(
                Image.open(tmp_path / "a8" / f"{i}.png"), dtype=np.uint16)
            Image.fromarray((v * scale).astype(np.uint16) if scale > 1 else v.astype(np.uint8)).save(
                tmp_path / d / f"{i}.png")
    out = {}
    for d in ("a8", "a16"):
        r = cli("stats", "compute", tmp_path / d, "--out", tmp_path / f"{d}.npz", "--keep-features", "--quiet",
                "--inception-weights", inception_file(), "--device", "cpu", "--batch-size", "2")
        assert r.exit_code == 0, r.stderr
        with np.load(tmp_path / f"{d}.npz") as z:
            out[d] = z["features"]
    np.testing.assert_array_equal(out["a8"], out["a16"])   # identical pixels, identical shapes


def test_a_file_name_that_is_not_utf8_is_read_without_a_traceback(cli, tmp_path):
    import os

    from PIL import Image

    from _metrics_util import inception_file

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, name in enumerate((b"caf\xe9.png", b"\xff\xfe.png", b"ok.png")):     # Latin-1 and junk bytes
        path = os.path.join(os.fsencode(folder), name)
        Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(os.fsdecode(path), format="PNG")
    r = cli("stats", "compute", folder, "--out", tmp_path / "s.npz", "--quiet", "--json",
            "--inception-weights", inception_file(), "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    assert "Traceback" not in r.stderr and r.json()["count"] == 3
    # a bad one among them: the message shows the bytes, no UnicodeEncodeError
    (folder / "broken.png").write_bytes(b"not a png")
    os.rename(folder / "broken.png", os.path.join(os.fsencode(folder), b"bad\xff.png"))
    r = cli("stats", "compute", folder, "--out", tmp_path / "t.npz", "--quiet",
            "--inception-weights", inception_file(), "--device", "cpu")
    assert r.exit_code == 2 and "bad\\xff.png" in r.stderr and "Traceback" not in r.stderr, r.stderr


# ----------------------------------------------------------------------------- sample counts beyond memory

@pytest.mark.parametrize("metric, n", [("is", 10 ** 12), ("kid", 10 ** 9), ("all", 10 ** 10)])
def test_an_n_beyond_memory_is_refused_up_front(cli, metric, n, monkeypatch):
    import bigganctl.api._shared as core

    monkeypatch.setattr(core, "open_generator", lambda *a, **k: pytest.fail("refused before loading"))
    from _metrics_util import inception_file

    extra = [] if metric == "is" else ["--ref", "imagenet-128"]
    r = cli("eval", metric, "--model", "biggan-deep-128", "--weights", "random", "--n", str(n), *extra,
            "--inception-weights", inception_file(), "--device", "cpu", "--quiet")
    assert r.exit_code == 2 and "--n" in r.stderr and "GiB in memory" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_available_memory_is_known_here_and_bounded_by_rlimit():
    import resource

    from bigganctl.runtime.device import available_memory

    have = available_memory()
    assert have is None or have > 0
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (2 ** 45, hard))
    try:
        assert available_memory() <= 2 ** 45
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


# ----------------------------------------------------------------------------- too few images

def test_one_image_stats_compute_says_what_is_wrong(cli, tmp_path):
    from _metrics_util import inception_file, smooth_images, write_folder

    folder = write_folder(tmp_path / "one", smooth_images(1, 0, size=16))
    r = cli("stats", "compute", folder, "--out", tmp_path / "s.npz", "--quiet",
            "--inception-weights", inception_file(), "--device", "cpu")
    assert r.exit_code == 2 and "holds 1 image" in r.stderr and "at least 2" in r.stderr, r.stderr
    assert "2 <= N <= 1" not in r.stderr
