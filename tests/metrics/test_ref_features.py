"""KID and the reference: `eval all` = FID and IS always, KID when the reference can
give features; KID against ADM reference batches (features of `arr_0`, computed once with the
run's extractor and cached); `stats pull NAME --features`; `stats compute --quiet`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from _metrics_util import fake_rows, inception_file, smooth_images, write_folder
from bigganctl.errors import UsageError
from bigganctl.metrics import ref_features
from bigganctl.metrics.evaluation import kid_if_available
from bigganctl.metrics.reference import Stats, read_stats, write_stats

N = 10          # generated images (the Inception Score's 10 splits need 10)
M = 4           # reference images
FEW = ["--n", "4", "--splits", "2"]      # enough for FID, IS and KID, few forward passes
NOTE = "KID not computed"


def _adm(path: Path, images: np.ndarray) -> Path:
    """An ADM-format reference batch: arr_0 (uint8 NHWC) + mu/sigma/mu_s/sigma_s, no features."""
    rng = np.random.default_rng(5)
    np.savez(path, arr_0=images, mu=rng.random(2048).astype(np.float32), sigma=np.eye(2048, dtype=np.float32),
             mu_s=np.zeros(16, np.float32), sigma_s=np.eye(16, dtype=np.float32))
    return path


def _w():
    return ["--inception-weights", str(inception_file()), "--device", "cpu"]


@pytest.fixture(scope="module")
def refs(tmp_path_factory):
    """A (generated stand-in), R (the reference images) as a PNG folder and as an ADM batch, and
    R's statistics without features (`stats compute` without --keep-features, made from the
    --keep-features file so that no second forward pass is needed)."""
    d = tmp_path_factory.mktemp("kidref")
    r_imgs = smooth_images(M, 3, size=32, grid=8)
    return {"A": write_folder(d / "A", smooth_images(N, 1, size=32, grid=4)),
            "R": write_folder(d / "R", r_imgs), "adm": _adm(d / "adm.npz", r_imgs), "dir": d}


@pytest.fixture(scope="module")
def kept(refs):
    """`stats compute R --keep-features --quiet` (and the same statistics without features)."""
    from typer.testing import CliRunner

    from bigganctl.cli.app import app

    out = refs["dir"] / "R-features.npz"
    r = CliRunner().invoke(app, ["stats", "compute", str(refs["R"]), "--out", str(out), "--keep-features",
                                 "--quiet", *_w()], catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    st = read_stats(out)
    plain = refs["dir"] / "R-plain.npz"
    write_stats(plain, Stats(st.mu, st.sigma, None, {**st.meta, "has_features": False}))
    return {"features": out, "plain": plain, "compute": r}


def test_stats_compute_quiet_prints_nothing(kept):
    r = kept["compute"]
    assert r.exit_code == 0 and r.stdout == "" and r.stderr == ""
    assert read_stats(kept["features"]).features.shape == (M, 2048)


def test_eval_all_without_features_gives_fid_and_is_and_a_note(cli, refs, kept, capsys):
    r = cli("eval", "all", "--images", refs["A"], "--ref", kept["plain"], *FEW, "--json", *_w())
    assert r.exit_code == 0, r.stderr
    res = r.json()
    assert res["fid"] > 0 and res["is_mean"] > 1
    assert {k: res[k] for k in ("kid_mean", "kid_std", "kid_subset_size", "kid_subsets")} == dict.fromkeys(
        ("kid_mean", "kid_std", "kid_subset_size", "kid_subsets"))
    assert res["metrics"] == ["fid", "is"]
    assert r.stderr.count(NOTE) == 1 and "--keep-features" in r.stderr and "ADM reference batch" in r.stderr
    assert any(NOTE in w for w in res["warnings"])
    from bigganctl.cli.render import render_eval

    capsys.readouterr()
    render_eval(res)                                # the table `eval all` prints without --json
    table = capsys.readouterr().out
    assert "FID" in table and "IS" in table and "KID" not in table


def test_kid_by_name_without_features_is_a_usage_error(cli, refs, kept):
    r = cli("eval", "kid", "--images", refs["A"], "--ref", kept["plain"], "--quiet", *_w())
    assert r.exit_code == 2 and "--ref" in r.stderr and "holds no features" in r.stderr
    assert "--keep-features" in r.stderr and "Traceback" not in r.stderr and r.stdout == ""


def test_python_api_follows_the_same_rule(refs, kept):
    import bigganctl

    assert kid_if_available("all") and kid_if_available(["all"]) and kid_if_available("fid,all")
    assert not kid_if_available(("fid", "is", "kid")) and not kid_if_available("all,kid")
    with pytest.raises(UsageError, match="holds no features") as e:
        bigganctl.evaluate(images=refs["A"], metrics=("fid", "is", "kid"), ref=kept["plain"],
                           inception_weights=inception_file(), device="cpu", progress=False)
    assert e.value.param == "ref"
    notes: list[str] = []
    res = bigganctl.evaluate(images=refs["A"], metrics="all", ref=kept["plain"], n=4, is_splits=2,
                             inception_weights=inception_file(), device="cpu", progress=False, warn=notes.append)
    assert res["fid"] is not None and res["kid_mean"] is None and [m for m in notes if NOTE in m]


def _features_cache() -> list[Path]:
    return sorted((Path(os.environ["BIGGANCTL_HOME"]) / "stats" / "features").glob("*.npz"))


@pytest.mark.numerics
def test_kid_against_an_adm_batch_equals_kid_against_its_images_features(cli, refs, kept, monkeypatch):
    """Same images as arr_0 of an ADM batch and as a PNG folder through `stats compute
    --keep-features`: the same uint8 pixels in the same batches, so the same features; KID
    to 1e-6 relative (measured: identical). The second use loads the cache: no forward pass."""
    args = ["eval", "all", "--images", refs["A"], *FEW, "--json", "--quiet", *_w()]
    base = cli(*args, "--ref", kept["features"])
    assert base.exit_code == 0, base.stderr
    assert not _features_cache()
    first = cli(*args, "--ref", refs["adm"], "--force")        # ADM batches claim the official weights
    assert first.exit_code == 0, first.stderr
    a, b = base.json(), first.json()
    assert b["kid_mean"] == pytest.approx(a["kid_mean"], rel=1e-6) and b["kid_mean"] != 0
    assert b["kid_std"] == pytest.approx(a["kid_std"], rel=1e-6)
    assert b["kid_subset_size"] == a["kid_subset_size"] == M and b["fid"] != a["fid"]   # FID: the stored mu/sigma
    cache = _features_cache()
    assert len(cache) == 1
    with np.load(cache[0]) as z:
        meta = json.loads(str(z["meta"]))
        np.testing.assert_array_equal(z["features"], read_stats(kept["features"]).features)
    assert meta["count"] == M and meta["reference"] == "adm.npz"

    def no_forward(*a, **k):
        raise AssertionError("the reference's features were computed again")

    monkeypatch.setattr(ref_features, "_compute", no_forward)
    again = cli("eval", "kid", "--images", refs["A"], "--ref", refs["adm"], "--n", "4", "--force", "--json", "--quiet",
                *_w())
    assert again.exit_code == 0, again.stderr
    assert again.json()["kid_mean"] == b["kid_mean"]


@pytest.mark.slow        # the ADM-batch KID test checks the feature cache fast; docs-commands runs this too
def test_registered_reference_pull_features_then_eval_all(cli, monkeypatch):
    """README's `eval all --model biggan-deep-128 --ref imagenet-128 ... --json` with a stand-in
    ADM batch in the cache: `stats pull imagenet-128 --features` computes the features ahead of
    time (offline), and `eval all` uses them without a forward pass over the reference."""
    home = Path(os.environ["BIGGANCTL_HOME"])
    (home / "stats").mkdir(parents=True)
    _adm(home / "stats" / "VIRTUAL_imagenet128_labeled.npz", smooth_images(M, 7, size=128, grid=8))
    r = cli("stats", "pull", "imagenet-128", "--features", "--json", "--quiet", *_w())
    assert r.exit_code == 0, r.stderr
    feats = Path(r.json()["features"]["imagenet-128"])
    assert _features_cache() == [feats]
    monkeypatch.setattr(ref_features, "_compute", lambda *a, **k: pytest.fail("computed again"))
    r = cli("eval", "all", "--model", "biggan-deep-128", "--weights", "random", "--ref", "imagenet-128",
            "--n", "4", "--splits", "2", "--trunc", "1.0", "--force", "--json", "--quiet", *_w())
    assert r.exit_code == 0, r.stderr
    res = r.json()
    # P/R use the same cached arr_0 features; no sFID: the stand-in's mu_s is 16-d, not 2023-d
    assert res["metrics"] == ["fid", "is", "kid", "precision", "recall"] and res["sfid"] is None
    assert res["kid_mean"] is not None and res["kid_subset_size"] == M and res["pr_reference_count"] == M
    assert res["ref"] == "imagenet-128"


def _sweep(ref) -> list:
    return ["sweep", "--model", "biggan-deep-128", "--weights", "random", "--ref", ref, "--trunc", "1.0",
            "--n", "10", "--batch-size", "5", "--strip-columns", "0", "--force", *_w()]


def test_sweep_kid_by_name_without_features_is_refused(cli, kept, tmp_path):
    r = cli(*_sweep(kept["plain"]), "--metrics", "kid", "--out", tmp_path / "K")
    assert r.exit_code == 2 and "holds no features" in r.stderr and "--ref" in r.stderr


def test_sweep_all_evaluates_rows_without_kid(kept, tmp_path, monkeypatch):
    """The sweep's wiring, without generating: `--metrics all` plans KID as optional, and the
    rows are evaluated with a protocol without it after one note (the real run: slow test)."""
    from bigganctl.api import sweep as api_sweep
    from bigganctl.metrics import evaluation

    p = api_sweep.plan("biggan-deep-128", "0.5,1.0", 10, kept["plain"], "all", 0, "balanced", "random",
                       tmp_path / "S", inception_file(), "cpu", "fp32", None, 0, None)
    assert p.protocol.metrics == evaluation.METRICS and p.protocol.kid_optional
    assert p.protocol.optional == ("kid", "sfid", "precision", "recall")
    asked: list = []
    fake_rows(monkeypatch, lambda psi, n, protocol: asked.append(protocol.metrics) or {
        "trunc_convention": "deepmind", "fid": 1.0, "is_mean": 2.0, "is_std": 0.1, "kid_mean": None,
        "kid_std": None, "sfid": None, "precision": None, "recall": None, "n": 10, "seconds": 0.0})
    notes: list[str] = []
    rows = list(api_sweep.evaluate_rows(p, p.rows(), lambda i: None, options=evaluation.RunOptions(), force=True,
                                        rows=lambda m, psi: None, warn=notes.append, loading=None))
    assert len(rows) == 2 and all(a[:2] == ("fid", "is") and "kid" not in a for a in asked)
    assert len([m for m in notes if NOTE in m]) == 1


@pytest.mark.slow
def test_sweep_all_leaves_kid_empty(cli, kept, tmp_path):
    r = cli(*_sweep(kept["plain"]), "--metrics", "all", "--out", tmp_path / "S", "--json")
    assert r.exit_code == 0, r.stderr
    row = r.json()["rows"][0]
    assert row["fid"] is not None and row["is_mean"] is not None and row["kid_mean"] is None
    assert r.stderr.count(NOTE) == 1
    assert (tmp_path / "S" / "sweep.csv").read_text().splitlines()[1].count(",,") >= 1     # empty KID cells
