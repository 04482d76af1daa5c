"""Faults in the state bigganctl keeps between runs: altered checkpoints,
references and hash memos never feed a number; a checkpoint that cannot be written costs
only resumability. Faults are real: flipped bytes in the real files, a real read-only or
full filesystem (a small tmpfs; skipped where mounting is not permitted)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from _metrics_util import inception_file, random_extractor_stats
from _tmpfs import small_tmpfs
from tiny_generator import TinyGenerator
from bigganctl.weights import hub
from bigganctl.api.evaluate import evaluate
from bigganctl.errors import UsageError
from bigganctl.integrity import TRAILER
from bigganctl.metrics.features import extractor_id, weights_sha256
from bigganctl.metrics.reference import read_stats

N = 8


@pytest.fixture(scope="module")
def ref_file(tmp_path_factory):
    return random_extractor_stats(tmp_path_factory.mktemp("ref") / "ref.npz", features=False)


def _run(ref_file, **kw):
    args = dict(model=TinyGenerator(), metrics=("fid",), n=N, psi=1.0, seed=3, ref=ref_file,
                inception_weights=inception_file(), device="cpu", batch_size=4, progress=False)
    args.update(kw)
    return evaluate(**args)


def _interrupt_at(k):
    def stop(done, total):
        if done >= k:
            raise KeyboardInterrupt
    return stop


def flip_bit_of_value(path: Path, value_bytes: bytes, bit: int = 62) -> None:
    """Flip one bit of the stored copy of ``value_bytes`` (a float64) inside ``path``."""
    data = bytearray(path.read_bytes())
    at = data.find(value_bytes)
    assert at >= 0, "value not found in the file"
    data[at + bit // 8] ^= 1 << (bit % 8)
    path.write_bytes(bytes(data))


def _payload_state(path: Path) -> dict:
    import io

    return torch.load(io.BytesIO(path.read_bytes()[:-TRAILER]), weights_only=True)


# ----------------------------------------------------------------------------- altered checkpoints and references

@pytest.mark.numerics
def test_an_altered_eval_checkpoint_is_reported_and_the_run_starts_afresh(ref_file, capsys):
    whole = _run(ref_file, resume=False)
    with pytest.raises(KeyboardInterrupt):
        _run(ref_file, progress=_interrupt_at(4))
    runs = hub.home() / "runs"
    (ckpt,) = runs.glob("eval-*.pt")
    st = _payload_state(ckpt)
    assert st["done"] == 4
    flip_bit_of_value(ckpt, st["fid"]["sum"][5].numpy().tobytes())      # one accumulator value
    assert _payload_state(ckpt)["fid"]["sum"][5] != st["fid"]["sum"][5]  # the flip took (a wrong FID before)
    again = _run(ref_file)
    assert again["resumed_from"] == 0                                   # unverified state never used
    assert again["fid"] == whole["fid"]
    damaged = [w for w in again["warnings"] if "checkpoint" in w]
    assert len(damaged) == 1 and "does not match its digest" in damaged[0], again["warnings"]
    assert not list(runs.glob("eval-*.pt"))


@pytest.mark.slow         # ~15 s; the fast test above covers the same path with a flipped bit
def test_a_truncated_or_unsealed_checkpoint_is_reported_too(ref_file):
    with pytest.raises(KeyboardInterrupt):
        _run(ref_file, progress=_interrupt_at(4))
    (ckpt,) = (hub.home() / "runs").glob("eval-*.pt")
    ckpt.write_bytes(ckpt.read_bytes()[:-TRAILER])                     # a version-1 file / a cut copy
    again = _run(ref_file)
    assert again["resumed_from"] == 0
    assert any("no integrity digest" in w for w in again["warnings"])


@pytest.mark.numerics
def test_an_altered_stats_checkpoint_never_reaches_the_reference(tmp_path, capsys):
    from _metrics_util import Interrupting
    from _metrics_util import smooth_images, write_folder
    from bigganctl.api.stats import compute_stats as compute

    src = write_folder(tmp_path / "imgs", smooth_images(4, 1, size=16))
    kw = dict(resize=None, center_crop=None, n=4, keep_features=False, inception_weights=inception_file(),
              device="cpu", batch_size=1, overwrite=False)
    whole = compute(src, None, progress=None, resume=False, **kw)
    with pytest.raises(KeyboardInterrupt):
        compute(src, tmp_path / "a.npz", progress=Interrupting(2), **kw)
    (ckpt,) = (hub.home() / "runs").glob("stats-*.pt")
    st = _payload_state(ckpt)
    flip_bit_of_value(ckpt, st["fid"]["sum"][5].numpy().tobytes())
    capsys.readouterr()
    again = Interrupting(None)
    out = compute(src, tmp_path / "a.npz", progress=again, **kw)
    assert again.initial == 0
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and "does not match its digest" in err
    np.testing.assert_array_equal(out.mu, whole.mu)
    np.testing.assert_array_equal(read_stats(tmp_path / "a.npz").mu, whole.mu)


# ----------------------------------------------------------------------------- references

def test_an_altered_reference_written_by_bigganctl_is_refused(ref_file, tmp_path):
    p = tmp_path / "ref.npz"
    p.write_bytes(ref_file.read_bytes())
    st = read_stats(p)
    assert st.meta.get("extractor_id")
    # rewrite one array with a changed value, keeping the stored digest: a hand edit
    with np.load(p) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["mu"] = arrays["mu"].copy()
    arrays["mu"][5] = 5.3e18
    np.savez(p, **arrays)
    with pytest.raises(UsageError) as e:
        read_stats(p)
    assert str(p) in str(e.value) and "digest" in str(e.value) and e.value.param == "ref"


# ----------------------------------------------------------------------------- a reference sigma that is no covariance

def _corr(s, i, j, r):
    s = s.copy()
    s[i, j] = s[j, i] = r * np.sqrt(s[i, i] * s[j, j])
    return s


@pytest.mark.parametrize("alter, why", [
    (lambda s: -s, "negative variance"),
    (lambda s: s + np.triu(np.full_like(s, 1e-3), 1), "not symmetric"),
    (lambda s: _corr(s, 0, 1, 3.0), "not positive semi-definite"),      # |correlation| 3 > 1
    (lambda s: np.where(np.eye(len(s), dtype=bool), s, np.nan), "NaN"),
])
def test_a_reference_sigma_that_is_no_covariance_is_refused(ref_file, tmp_path, alter, why):
    with np.load(ref_file) as z:
        mu, sigma = z["mu"], z["sigma"]
    p = tmp_path / "fid_stats.npz"                   # pytorch-fid style: no metadata, no digest
    np.savez(p, mu=mu, sigma=alter(sigma))
    with pytest.raises(UsageError) as e:
        read_stats(p)
    assert str(p) in str(e.value) and why in str(e.value) and e.value.param == "ref"


def test_a_negated_sigma_fails_eval_with_exit_2_not_a_passed_gate(cli, ref_file, tmp_path):
    with np.load(ref_file) as z:
        mu, sigma = z["mu"], z["sigma"]
    p = tmp_path / "neg.npz"
    np.savez(p, mu=mu, sigma=-sigma)
    from _metrics_util import smooth_images, write_folder

    imgs = write_folder(tmp_path / "imgs", smooth_images(4, 1, size=16))
    r = cli("eval", "fid", "--ref", p, "--images", imgs, "--inception-weights", inception_file(), "--device", "cpu",
            "--max-fid", "0.5", "--quiet", "--force")
    assert r.exit_code == 2 and str(p) in r.stderr and "negative variance" in r.stderr, r.stderr


def test_a_valid_rank_deficient_sigma_is_accepted(tmp_path):
    rng = np.random.default_rng(1)
    f = rng.standard_normal((20, 2048))                   # N < D: 19 non-zero eigenvalues
    p = tmp_path / "fid_stats.npz"
    np.savez(p, mu=f.mean(0), sigma=np.cov(f, rowvar=False))
    assert read_stats(p).sigma.shape == (2048, 2048)


# ----------------------------------------------------------------------------- a checkpoint that cannot be written

@pytest.mark.parametrize("ro", [False, pytest.param(True, marks=pytest.mark.slow)],
                         ids=["full-home", "read-only-home"])      # both in tests/system/test_fault_campaign.py too
@pytest.mark.numerics
def test_a_checkpoint_that_cannot_be_written_costs_only_resumability(ref_file, tmp_path, monkeypatch, ro):
    whole = _run(ref_file, resume=False)
    with small_tmpfs(tmp_path / "home", size="64k", ro=ro) as home:      # a checkpoint here is ~32 MB
        monkeypatch.setenv("BIGGANCTL_HOME", str(home))
        doc = _run(ref_file, checkpoint_every=4)
        assert doc["fid"] == whole["fid"]
        failed = [w for w in doc["warnings"] if "cannot save the checkpoint" in w]
        assert len(failed) == 1, doc["warnings"]                         # one warning, not one per save
        assert ("Read-only" in failed[0]) if ro else ("No space left" in failed[0])
        assert not list(home.rglob("*.pt")) and not list(home.rglob(".*.pt*"))   # no partial file left


# ----------------------------------------------------------------------------- a fold-cache write that fails

@pytest.mark.parametrize("ro", [False, True], ids=["full-home", "read-only-home"])
def test_a_fold_cache_write_that_fails_costs_only_speed(tmp_path, monkeypatch, capsys, ro):
    from bigganctl.weights import foldcache, loader
    from bigganctl.testing import hf
    from _tiny_configs import TINY

    folder = hf.write_random_checkpoint(tmp_path / "tiny_deep", TINY, seed=5)
    monkeypatch.setenv("BIGGANCTL_LOAD_CACHE", "1")
    monkeypatch.setattr(foldcache, "_warned", set(), raising=False)
    with small_tmpfs(tmp_path / "home", size="64k", ro=ro) as home:     # the folded weights need more
        monkeypatch.setenv("BIGGANCTL_HOME", str(home))
        for _ in range(2):
            loader.clear_cache()
            G = loader.load_generator(folder, device="cpu", progress=False)
        assert G.z_dim == TINY.z_dim
        err = capsys.readouterr().err
        assert err.count("warning:") == 1 and "folded weights" in err
        assert ("Read-only" in err) if ro else ("No space left" in err or "space" in err.lower()), err
        assert not [p for p in home.rglob("*") if p.is_file() and "folded" in str(p)]
    loader.clear_cache()


# ----------------------------------------------------------------------------- hash memos, sweep state and feature caches

def _memo_of_inception() -> Path:
    from bigganctl.weights.checksums import memo_path

    weights_sha256(inception_file())                        # remembered under $BIGGANCTL_HOME/hashes
    p = memo_path(inception_file(), hub.home())
    assert p.is_file() and "hashes" in str(p)
    return p


@pytest.mark.parametrize("how", ["flipped", pytest.param("resealed", marks=pytest.mark.slow)])
def test_a_wrong_digest_in_hashes_is_not_trusted(cli, ref_file, tmp_path, how):
    from bigganctl.integrity import seal_json

    true_id = extractor_id(weights_sha256(inception_file()))
    memo = _memo_of_inception()
    doc = json.loads(memo.read_text())
    wrong = ("0" if doc["sha256"][0] != "0" else "1") + doc["sha256"][1:]
    doc["sha256"] = wrong                                   # size and mtime unchanged
    if how == "resealed":                                   # consistent with itself (a stale memo)
        doc = seal_json({k: v for k, v in doc.items() if k != "check"}, "check")
    memo.write_text(json.dumps(doc))
    if how == "flipped":
        assert extractor_id(weights_sha256(inception_file())) == true_id
    from _metrics_util import smooth_images, write_folder

    imgs = write_folder(tmp_path / "imgs", smooth_images(4, 1, size=16))
    r = cli("eval", "fid", "--ref", ref_file, "--images", imgs, "--inception-weights", inception_file(),
            "--device", "cpu", "--quiet", "--json", "--resize", "16")
    assert r.exit_code == 0, r.stderr                      # the valid reference is not blamed
    assert r.json()["extractor_id"] == true_id
    memo.write_text(json.dumps(doc))                       # wrong again: stats compute must not copy it
    r = cli("stats", "compute", imgs, "--out", tmp_path / "s.npz", "--quiet", "--json",
            "--inception-weights", inception_file(), "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    assert read_stats(tmp_path / "s.npz").extractor_id == true_id


# ----------------------------------------------------------------------------- sweep state

def test_an_altered_sweep_state_is_reported_and_the_sweep_starts_fresh(tmp_path):
    import types

    from bigganctl._io import write_json
    from bigganctl.api.sweep_plan import STATE_FILE, earlier_state, seal_state

    key = {"n": 4, "seed": 0}
    write_json(tmp_path / STATE_FILE, seal_state({"version": 2, "key": key, "rows": {"m|0.5": {"fid": 12.25}},
                                                  "written": None}))
    (tmp_path / "sweep.csv").write_text("psi,fid\n0.5,12.25\n")        # its own earlier outputs
    p = types.SimpleNamespace(out=tmp_path, key=key)
    notes, warns = [], []
    kw = dict(resume=True, overwrite=False, note=notes.append, warn=warns.append)
    assert earlier_state(p, **kw)["rows"] == {"m|0.5": {"fid": 12.25}} and not warns
    path = tmp_path / STATE_FILE
    path.write_text(path.read_text().replace("12.25", "-2.05e35"))     # an altered number
    assert earlier_state(p, **kw) is None                              # not used, and not refused
    assert len(warns) == 1 and "does not match its digest" in warns[0]


# ----------------------------------------------------------------------------- KID feature cache

def test_an_altered_feature_cache_is_computed_again_and_a_failed_write_only_warns(tmp_path, capsys):
    from bigganctl.metrics import ref_features as rf

    ident = {"reference_sha256": "a" * 64, "inception_weights_sha256": "b" * 64, "extractor_id": "x",
             "reference": "adm.npz"}
    feats = np.arange(3 * 2048, dtype=np.float32).reshape(3, 2048) / 7
    p = tmp_path / "f.npz"
    rf._write(p, feats, ident)
    np.testing.assert_array_equal(rf._read(p, ident), feats)
    with np.load(p) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["features"][1, 5] = 1e30                                # altered, digest kept
    np.savez(p, **arrays)
    assert rf._read(p, ident) is None
    with small_tmpfs(tmp_path / "ro", size="64k", ro=True) as ro:
        rf._write(ro / "f.npz", feats, ident)                      # no exception: a cache
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and "Read-only" in err
