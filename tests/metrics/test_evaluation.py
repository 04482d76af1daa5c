"""The evaluation driver with a tiny test-only generator: class plans, batch-size independence,
checkpoint/resume to the same numbers, input checks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from _metrics_util import inception_file, random_extractor_stats
from tiny_generator import TinyGenerator
from bigganctl.errors import GateFailed, UsageError
from bigganctl.api.evaluate import evaluate
from bigganctl.metrics.evaluation import check_gates, normalize_metrics, optional_metrics
from bigganctl.noise import class_plan

N = 12


@pytest.fixture(scope="module")
def ref_file(tmp_path_factory):
    """Arbitrary 2048-d statistics labelled with the random extractor (no forwards needed)."""
    return random_extractor_stats(tmp_path_factory.mktemp("ref") / "ref.npz", features=False)


def _run(ref_file, **kw):
    args = dict(model=TinyGenerator(), metrics=("fid", "is"), n=N, psi=1.0, seed=3, ref=ref_file,
                inception_weights=inception_file(), device="cpu", batch_size=4, progress=False)
    args.update(kw)
    return evaluate(**args)


@pytest.fixture(scope="module")
def baseline(ref_file):
    return _run(ref_file)


def test_result_document(baseline):
    r = baseline
    for k in ("fid", "is_mean", "is_std", "kid_mean", "kid_std", "n", "model", "trunc", "ref", "seconds"):
        assert k in r
    assert r["n"] == N and r["model"] == "TinyGenerator" and r["trunc"] == 1.0
    assert r["trunc_convention"] == "deepmind" and r["classes"] == "balanced" and r["seed"] == 3
    assert r["fid"] > 0 and r["is_mean"] > 1.0 and r["kid_mean"] is None
    assert r["extractor"] == "inception-v3-compat" and r["resumed_from"] == 0 and r["world_size"] == 1


@pytest.mark.numerics
def test_numbers_do_not_depend_on_batch_size(ref_file, baseline):
    other = _run(ref_file, batch_size=7)
    assert other["fid"] == pytest.approx(baseline["fid"], rel=1e-6)
    assert other["is_mean"] == pytest.approx(baseline["is_mean"], rel=1e-6)
    assert other["is_std"] == pytest.approx(baseline["is_std"], rel=1e-4, abs=1e-9)


@pytest.mark.numerics
def test_interrupted_run_resumes_to_the_same_numbers(ref_file, baseline):
    def stop_after_4(done, total):
        if done >= 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(ref_file, progress=stop_after_4, checkpoint_every=100)     # Ctrl-C saves the checkpoint
    resumed = _run(ref_file)
    assert resumed["resumed_from"] == 4
    for k in ("fid", "is_mean", "is_std"):
        assert resumed[k] == baseline[k]
    runs = Path(os.environ["BIGGANCTL_HOME"]) / "runs"
    assert runs.is_dir() and not list(runs.iterdir())                  # finished runs leave no checkpoint


def test_class_plans():
    labels, desc = class_plan("balanced", 25, 10, seed=0)
    assert desc == "balanced" and labels.tolist() == [i % 10 for i in range(25)]
    assert torch.bincount(class_plan("balanced", 50, 10, 0)[0]).tolist() == [5] * 10
    r1, _ = class_plan("random", 30, 10, seed=4)
    r2, _ = class_plan("random", 12, 10, seed=4)
    assert r1[:12].tolist() == r2.tolist() and r1.max() < 10          # prefixes agree
    assert class_plan("random", 30, 10, seed=5)[0].tolist() != r1.tolist()
    lst, desc = class_plan("3,7", 5, 10, seed=0)
    assert lst.tolist() == [3, 7, 3, 7, 3] and desc == [3, 7]
    with pytest.raises(UsageError) as e:
        class_plan([12], 5, 10, seed=0)
    assert e.value.param == "classes"


def test_metric_names():
    assert normalize_metrics("all") == ("fid", "is", "kid", "sfid", "precision", "recall")
    assert normalize_metrics(["is", "fid"]) == ("fid", "is")
    assert normalize_metrics("kid,isc") == ("is", "kid")
    assert normalize_metrics("pr,sfid") == ("sfid", "precision", "recall")
    assert normalize_metrics("recall") == ("recall",)
    assert optional_metrics("all") == ("kid", "sfid", "precision", "recall")
    assert optional_metrics("all,pr") == ("kid", "sfid") and optional_metrics("fid,sfid") == ()
    with pytest.raises(UsageError):
        normalize_metrics("vgg")


@pytest.mark.parametrize("kw, option, match", [
    (dict(n=0), "n", "positive integer"),
    (dict(n=1, metrics=("fid",)), "n", "at least 2"),
    (dict(n=9, metrics=("is",)), "n", "10 splits"),
    (dict(ref=None), "ref", "needs reference statistics"),
    (dict(metrics=("kid",)), "ref", "holds no features"),
    (dict(psi=1.5), "psi", r"\(0, 1\]"),
    (dict(classes="nonsense-class-name"), "classes", "unknown class"),
])
def test_bad_input_fails_before_any_work(ref_file, kw, option, match):
    with pytest.raises(UsageError, match=match) as e:
        _run(ref_file, **kw)
    assert e.value.param == option


def test_gates():
    check_gates({"fid": 5.0, "is_mean": 10.0}, max_fid=5.0, min_is=10.0)
    with pytest.raises(GateFailed, match="FID 5.5000 > --max-fid 5"):
        check_gates({"fid": 5.5, "is_mean": 10.0}, max_fid=5.0)
    with pytest.raises(GateFailed, match="IS"):
        check_gates({"fid": None, "is_mean": 1.0}, min_is=2.0)
    res = {"sfid": 4.0, "precision": 0.7, "recall": 0.5}
    check_gates(res, max_sfid=4.0, min_precision=0.7, min_recall=0.5)
    check_gates({"sfid": None}, max_sfid=1.0)              # not computed: nothing to gate
    with pytest.raises(GateFailed, match=r"sFID 4.0000 > --max-sfid 3; precision 0.7000 < --min-precision 0.8"):
        check_gates(res, max_sfid=3.0, min_precision=0.8)
    with pytest.raises(GateFailed, match="recall 0.5000 < --min-recall 0.6"):
        check_gates(res, min_recall=0.6)
