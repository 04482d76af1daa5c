"""bigganctl.sample (bigganctl/api/sample.py) with a tiny test-only generator: seeds, class-major
order and labels, reproducibility from the public calls, batch-size independence, psi checks,
output plans checked before any work, the reproduce command, evaluation plans in memory."""

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_generator import TinyGenerator

from bigganctl.classes import resolve_classes
from bigganctl.errors import RuntimeFailure, UsageError
from bigganctl.api.sample import plan_outputs, reproduce_command, resolve_seeds, sample, write_outputs
from bigganctl.generate import to_uint8
from bigganctl.media.images import make_grid
from bigganctl.noise import truncated_noise


@pytest.fixture(scope="module")
def G():
    return TinyGenerator()


class Recording(TinyGenerator):
    """Records the z and class vectors of every call."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def synthesize(self, z, y, psi):
        self.calls.append((z.clone(), y.argmax(1).clone(), psi))
        return super().synthesize(z, y, psi)


def close_pixels(a: torch.Tensor, b: torch.Tensor) -> None:
    """The contract's tolerance: at most one level apart, in at most 0.01 % of values."""
    d = (a.int() - b.int()).abs()
    assert int(d.max()) <= 1
    assert int((d > 0).sum()) <= 1e-4 * d.numel()


# ------------------------------------------------------------------ seeds

def test_resolve_seeds():
    assert resolve_seeds() == list(range(8))
    assert resolve_seeds(n=3, seed=5) == [5, 6, 7]
    assert resolve_seeds(seeds="2-3,10") == [2, 3, 10]
    assert resolve_seeds(seeds=[4, 1]) == [4, 1]


@pytest.mark.parametrize("kw, option", [
    (dict(n=0), "n"), (dict(n=-2), "n"), (dict(n=2.5), "n"), (dict(n=True), "n"),
    (dict(seeds="5-2"), "seeds"), (dict(seeds="x"), "seeds"), (dict(seeds=[]), "seeds"),
    (dict(seeds=[-1]), "seeds"), (dict(n=2, seeds="1"), "seeds"), (dict(seed=-1), "seed"),
    (dict(n=2, seed=2**63 - 1), "seed"),
])
def test_resolve_seeds_rejects(kw, option):
    with pytest.raises(UsageError) as e:
        resolve_seeds(**kw)
    assert e.value.param == option


# ------------------------------------------------------------------ sampling

def test_sample_order_labels_and_manifest(G):
    calls = []
    res = sample(G, classes=[207, "goldfish"], n=3, seed=10, psi=0.5,
                 progress=lambda done, total: calls.append((done, total)))
    assert res.images.shape == (6, 3, 16, 16) and res.images.dtype == torch.uint8
    assert res.labels.tolist() == [207, 207, 207, 1, 1, 1]
    assert res.seeds == [10, 11, 12, 10, 11, 12] and res.columns == [10, 11, 12]
    assert [c.index for c in res.classes] == [207, 1]
    assert calls[-1] == (6, 6)
    assert res.images.float().std() > 20          # not a constant image
    m = res.manifest
    assert m["classes"] == [{"index": 207, "wnid": "n02099601", "name": "golden retriever"},
                            {"index": 1, "wnid": "n01443537", "name": "goldfish"}]
    assert m["seeds"] == [10, 11, 12] and m["psi"] == 0.5 and m["truncation"] == "deepmind"
    assert "TruncNorm(-2, 2)" in m["truncation_rule"]
    assert m["dtype"] == "fp32" and m["device"] == "cpu" and m["resolution"] == 16
    assert m["shape"] == [6, 3, 16, 16]
    assert m["versions"]["torch"] == torch.__version__ and "bigganctl" in m["versions"]
    json.dumps(m)                                  # serialisable as is


@pytest.mark.numerics
def test_each_image_is_reproducible_from_the_two_public_calls(G):
    res = sample(G, classes=[3, 980], seeds=[7, 2], psi=0.7)
    for i, (c, s) in enumerate(zip(res.labels.tolist(), res.seeds, strict=True)):
        z = truncated_noise([s], G.z_dim, 0.7, G.truncation)
        x = to_uint8(G(z, torch.tensor([c]), 0.7))
        close_pixels(x[0], res.images[i])


def test_rows_share_their_noise():
    R = Recording()
    sample(R, classes=[5, 6, 7], n=4, seed=3, psi=0.4, batch_size=100)
    (z, y, psi), = R.calls
    assert y.tolist() == [5] * 4 + [6] * 4 + [7] * 4 and psi == 0.4
    assert torch.equal(z[0:4], z[4:8]) and torch.equal(z[0:4], z[8:12])
    assert torch.equal(z[0:4], truncated_noise([3, 4, 5, 6], 16, 0.4, "deepmind"))


@pytest.mark.numerics
def test_batch_size_does_not_change_pixels(G):
    a = sample(G, classes=[207, 1, 33], n=4, psi=0.5, batch_size=1).images
    b = sample(G, classes=[207, 1, 33], n=4, psi=0.5, batch_size=7).images
    c = sample(G, classes=[207, 1, 33], n=4, psi=0.5).images
    close_pixels(a, b)
    close_pixels(a, c)


@pytest.mark.numerics
def test_seed_subset_reproduces_grid_columns(G):
    full = sample(G, classes=[207, 1, 33], n=4, seed=0, psi=0.5).images.view(3, 4, 3, 16, 16)
    part = sample(G, classes=[207, 1, 33], seeds="2-3", psi=0.5).images.view(3, 2, 3, 16, 16)
    close_pixels(full[:, 2:4], part)
    assert not torch.equal(full[:, 0:2], part)     # a different column would not match


@pytest.mark.parametrize("psi", [0, -0.5, 1.5, float("nan"), float("inf"), "x"])
def test_psi_checked_for_deepmind_models(G, psi):
    with pytest.raises(UsageError) as e:
        sample(G, classes=[1], n=1, psi=psi)
    assert e.value.param == "psi"


def test_paper_convention_takes_thresholds_above_one():
    res = sample(TinyGenerator(truncation="paper"), classes=[1], n=2, psi=1.5)
    assert res.manifest["truncation"] == "paper" and res.manifest["psi"] == 1.5
    with pytest.raises(UsageError):
        sample(TinyGenerator(truncation="paper"), classes=[1], n=2, psi=0)


def test_bad_arguments_fail_before_loading(monkeypatch):
    import bigganctl.api._shared as mod

    monkeypatch.setattr(mod, "open_generator", lambda *a, **k: pytest.fail("must not load"))
    cases = [
        (dict(model="no-such-model"), "model"), (dict(classes="crane"), "classes"),
        (dict(psi=1.5), "psi"), (dict(n=0), "n"), (dict(batch_size=0), "batch_size"),
        (dict(classes="balanced", seeds="1-3"), "seeds"),
    ]
    for kw, option in cases:
        with pytest.raises(UsageError) as e:
            sample(**{"classes": [1], **kw})
        assert e.value.param == option, kw


# ------------------------------------------------------------------ media


# ------------------------------------------------------------------ output plans

def test_plan_checks_everything_before_work(tmp_path):
    cls, seeds = resolve_classes([207, 1]), [0, 1]
    kw = dict(classes=cls, seeds=seeds)
    plan = plan_outputs(out=tmp_path / "g.png", images_dir=tmp_path / "imgs", npz=tmp_path / "b.npz", **kw)
    assert len(plan.plan.files) == 2 + 2 + 4 + 1
    assert not any(tmp_path.iterdir())             # planning writes nothing

    def fails(option, exc=UsageError, **more):
        with pytest.raises(exc) as e:
            plan_outputs(**{"out": tmp_path / "g.png", "images_dir": None, "npz": None, **kw, **more})
        if exc is UsageError:
            assert e.value.param == option
        return str(e.value)

    fails("out", out=tmp_path / "g.bmpx")
    fails("npz", npz=tmp_path / "b.txt")
    fails("nrow", nrow=0)
    fails("out", grid=False)                     # --out and --no-grid
    fails("out", out=None, grid=False)           # nothing to write
    (tmp_path / "g.png.json").write_text("{}")     # even the manifest alone is kept
    assert "--overwrite" in fails("out")
    plan_outputs(out=tmp_path / "g.png", images_dir=None, npz=None, overwrite=True, **kw)
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "001_goldfish_seed0001.png").write_bytes(b"x")
    fails("images", images_dir=tmp_path / "imgs", out=tmp_path / "h.png")
    (tmp_path / "afile").write_text("x")
    assert "not a folder" in fails(None, RuntimeFailure, out=tmp_path / "afile" / "sub" / "g.png")
    fails("images", images_dir=tmp_path / "afile", out=tmp_path / "h.png")


def test_write_outputs(G, tmp_path):
    res = sample(G, classes=[207, "golden retriever", 1], n=2, seed=4, psi=0.5)
    plan = plan_outputs(out=tmp_path / "o" / "g.png", images_dir=tmp_path / "imgs", npz=tmp_path / "b.npz",
                        classes=res.classes, seeds=res.columns)
    doc = write_outputs(plan, res, command="bigganctl sample ...")
    out = doc["outputs"]
    assert out == {"grid": str(tmp_path / "o" / "g.png"), "npz": str(tmp_path / "b.npz"),
                   "images": str(tmp_path / "imgs"),
                   "grid_manifest": str(tmp_path / "o" / "g.png.json"),
                   "npz_manifest": str(tmp_path / "b.npz.json"),
                   "images_manifest": str(tmp_path / "imgs" / "manifest.json")}
    grid = np.array(Image.open(out["grid"]))
    assert grid.shape == (3 * 18 + 2, 2 * 18 + 2, 3)
    assert np.array_equal(grid, make_grid(res.images, 2).permute(1, 2, 0).numpy())
    gm = json.loads(Path(out["grid_manifest"]).read_text())
    assert gm["command"] == "bigganctl sample ..." and gm["seeds"] == [4, 5]
    assert gm["grid"] == {"nrow": 2, "rows": 3, "tile": 16, "padding": 2, "size": [38, 56]}
    assert [c["index"] for c in gm["classes"]] == [207, 207, 1]
    assert "--class 207,207,1 --seeds 4-5 --trunc 0.5" in gm["reproduce"]
    files = sorted(os.listdir(tmp_path / "imgs"))
    assert files == ["001_goldfish_seed0004.png", "001_goldfish_seed0005.png",
                     "207_golden_retriever_seed0004.png", "207_golden_retriever_seed0005.png",
                     "manifest.json"]               # the repeated class is written once
    one = np.array(Image.open(tmp_path / "imgs" / "001_goldfish_seed0005.png"))
    assert np.array_equal(one, res.images[5].permute(1, 2, 0).numpy())
    im = json.loads((tmp_path / "imgs" / "manifest.json").read_text())
    assert {"file": "001_goldfish_seed0005.png", "class": 1, "seed": 5} in im["files"]
    with np.load(out["npz"]) as f:
        assert f["arr_1"].tolist() == [207, 207, 207, 207, 1, 1]
    assert not [p for p in tmp_path.rglob(".*")]    # no temporaries


def test_reproduce_command_round_trip(G):
    m = sample(G, classes=[1, 2], seeds=[0, 1, 2, 5], psi=0.25).manifest
    m["weights"] = {"source": "random", "sha256": "random"}
    assert reproduce_command(m) == ("bigganctl sample --model TinyGenerator --weights random "
                                    "--class 1,2 --seeds 0-2,5 --trunc 0.25")
    assert not math.isnan(m["psi"])


def test_package_attribute_is_the_function_even_after_the_cli_is_imported(G):
    import bigganctl
    import bigganctl.cli.sample  # noqa: F401  (imports the core module)

    for _ in range(2):
        assert callable(bigganctl.sample) and bigganctl.sample.__name__ == "sample"
    res = bigganctl.sample(model=G, classes=[207, "goldfish"], n=2, seed=0, psi=0.5)
    assert res.images.shape == (4, 3, 16, 16)


@pytest.mark.parametrize("argv0, expected", [
    ("/usr/bin/bigganctl", "bigganctl sample --class 'golden retriever'"),
    ("/x/bigganctl/__main__.py", "bigganctl sample --class 'golden retriever'"),
    ("/x/pytest", None),
])
def test_invoked_command(monkeypatch, argv0, expected):
    from bigganctl.cli.render import invoked_command

    monkeypatch.setattr("sys.argv", [argv0, "sample", "--class", "golden retriever"])
    assert invoked_command() == expected


def test_the_evaluation_plans_in_memory(G):
    """classes="balanced" | "random": eval's samples (seed S+i, the i-th class of the plan)."""
    from bigganctl.noise import class_plan

    res = sample(G, classes="random", n=5, seed=7, psi=0.5)
    assert res.seeds == [7, 8, 9, 10, 11] and res.classes == []
    assert res.labels.tolist() == class_plan("random", 5, 1000, 7)[0].tolist()
    assert res.manifest["plan"]["kind"] == "random" and res.manifest["seeds"] == "7-11"
    one = sample(G, classes=[int(res.labels[2])], seeds=[9], psi=0.5)
    diff = (one.images[0].int() - res.images[2].int()).abs()       # another batch: the uint8 rule
    assert diff.max() <= 1 and (diff > 0).float().mean() < 0.01
    assert sample(G, classes="balanced", n=3).labels.tolist() == [0, 1, 2]


def test_save_samples_is_the_commands_operation(G, tmp_path, monkeypatch):
    """``bigganctl.save_samples``, which ``bigganctl sample`` calls: a grid alone in memory,
    files streamed otherwise, the same pixels as ``sample``; bad input before any file."""
    import bigganctl

    res = sample(G, classes=[207, 1], n=2, seed=4, psi=0.5)
    doc = bigganctl.save_samples(G, classes=[207, 1], n=2, seed=4, psi=0.5, out=tmp_path / "g.png", device="cpu")
    assert np.array_equal(np.array(Image.open(doc["outputs"]["grid"])),
                          make_grid(res.images, 2).permute(1, 2, 0).numpy())
    doc = bigganctl.save_samples(G, classes=[207, 1], n=2, seed=4, psi=0.5, npz=tmp_path / "b.npz", grid=False,
                                 device="cpu")
    with np.load(doc["outputs"]["npz"]) as f:
        assert np.array_equal(f["arr_0"], res.images.permute(0, 2, 3, 1).numpy())
        assert f["arr_1"].tolist() == [207, 207, 1, 1]
    monkeypatch.chdir(tmp_path)             # no out: named for the model, here the generator's class
    doc = bigganctl.save_samples(G, classes=[1], n=1, psi=0.5, device="cpu")
    assert Path(doc["outputs"]["grid"]).parent == Path("samples")
    assert Path(doc["outputs"]["grid"]).name.startswith(f"{type(G).__name__}_")
    with pytest.raises(UsageError) as e:
        bigganctl.save_samples(G, classes=[1], psi=2.0, out=tmp_path / "x.png", device="cpu")
    assert e.value.param == "psi" and not (tmp_path / "x.png").exists()
