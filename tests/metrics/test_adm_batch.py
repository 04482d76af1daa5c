"""`stats compute` records sFID's mu_s/sigma_s and writes ADM-format reference batches;
such a batch is read back as one: every metric of `eval all` against it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from _metrics_util import inception_file, smooth_images, write_folder
from bigganctl.cli.app import app
from bigganctl.metrics.adm_batch import subset_indices
from bigganctl.metrics.ref_features import is_adm_batch
from bigganctl.metrics.reference import read_stats

N = 7


def _w():
    return ["--inception-weights", str(inception_file()), "--device", "cpu", "--batch-size", "4"]


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    d = tmp_path_factory.mktemp("admbatch")
    imgs = smooth_images(N, 2, size=32, grid=4)
    folder = write_folder(d / "real", imgs)
    runner = CliRunner()
    r1 = runner.invoke(app, ["stats", "compute", str(folder), "--out", str(d / "plain.npz"), "--quiet", *_w()],
                       catch_exceptions=False)
    r2 = runner.invoke(app, ["stats", "compute", str(folder), "--out", str(d / "adm.npz"), "--adm-batch",
                             "--adm-images", "4", "--adm-seed", "3", "--json", "--quiet", *_w()],
                       catch_exceptions=False)
    assert r1.exit_code == 0 and r2.exit_code == 0, r1.stderr + r2.stderr
    return {"dir": d, "imgs": imgs, "folder": folder, "json": json.loads(r2.stdout)}


def test_subset_indices_are_seeded_sorted_and_distinct():
    a = subset_indices(100, 10, seed=3)
    assert a.tolist() == sorted(set(a.tolist())) and len(a) == 10
    assert a.tolist() == subset_indices(100, 10, seed=3).tolist() != subset_indices(100, 10, seed=4).tolist()
    assert subset_indices(5, 10).tolist() == [0, 1, 2, 3, 4]


@pytest.mark.numerics
def test_stats_compute_records_spatial_statistics(made):
    st = read_stats(made["dir"] / "plain.npz")
    assert st.has_spatial and st.mu_s.shape == (2023,) and st.sigma_s.shape == (2023, 2023)
    assert st.meta["spatial_layer"] == "mixed_6/conv" and st.meta["spatial_module"] == "Mixed_6d.branch1x1"
    assert np.allclose(st.sigma_s, st.sigma_s.T) and np.trace(st.sigma_s) > 0


@pytest.mark.numerics
def test_adm_batch_layout(made):
    z = np.load(made["dir"] / "adm.npz")            # how ADM's evaluator opens it
    assert {"mu", "sigma", "mu_s", "sigma_s", "arr_0"} <= set(z.files)
    idx = subset_indices(N, 4, seed=3)
    assert z["arr_0"].dtype == np.uint8 and z["arr_0"].shape == (4, 32, 32, 3)
    assert np.array_equal(z["arr_0"], made["imgs"][idx])          # PNG round trip is lossless
    plain = read_stats(made["dir"] / "plain.npz")
    for k in ("mu", "sigma", "mu_s", "sigma_s"):
        assert z[k].dtype == np.float64
        np.testing.assert_allclose(z[k], getattr(plain, k), rtol=1e-12, atol=1e-12)   # same run, same sums
    meta = json.loads(str(z["bigganctl_meta"]))
    assert meta["format"] == "adm-reference-batch" and meta["image_count"] == 4 and meta["image_subset_seed"] == 3
    assert meta["extractor"] == "inception-v3-compat" and meta["extractor_id"] == made["json"]["extractor_id"]
    assert is_adm_batch(read_stats(made["dir"] / "adm.npz"))


@pytest.mark.numerics
def test_eval_all_against_a_written_adm_batch(made):
    r = CliRunner().invoke(app, ["eval", "all", "--images", str(made["folder"]), "--ref",
                                 str(made["dir"] / "adm.npz"), "--json", "--splits", "adm", *_w()],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    res = json.loads(r.stdout)
    for k in ("fid", "sfid", "is_mean", "precision", "recall"):
        assert isinstance(res[k], float), k
    # the same images as the statistics: FID and sFID are 0 up to float64 round-off
    assert abs(res["fid"]) < 1e-6 and abs(res["sfid"]) < 1e-6
    # every reference image is one of the samples: recall 1
    assert res["recall"] == 1.0 and res["pr_reference_count"] == 4


def test_adm_batch_needs_out(tmp_path):
    from bigganctl.errors import UsageError
    from bigganctl.api.stats import compute_stats

    with pytest.raises(UsageError, match="--out") as e:
        compute_stats(tmp_path, None, device="cpu", adm_batch=True)
    assert e.value.param == "adm_batch"
