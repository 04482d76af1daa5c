"""bigganctl.evaluate() on a tiny test-only generator: the result document, numbers
independent of the batch size, an interrupted run resumed to the same numbers (no checkpoint
left behind), bad input refused before any work."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from _metrics_util import inception_file, random_extractor_stats
from tiny_generator import TinyGenerator
from bigganctl.errors import UsageError
from bigganctl.api.evaluate import evaluate

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
