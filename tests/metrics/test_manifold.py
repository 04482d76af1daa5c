"""sFID, precision/recall and ADM's IS rule, against independent implementations:
a forward hook on torch-fidelity's own extractor for sFID, a brute-force numpy P/R (duplicates,
ties at the radius), torch-fidelity's ``prc``, and ADM's IS formula in numpy."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from _metrics_util import inception_file, smooth_images
from bigganctl.metrics import maths as S
from bigganctl.metrics.manifold import precision_recall, radii, sq_distances

N_S, N_R = 12, 8     # samples and reference images of the end-to-end test


# ----------------------------------------------------------------------------- independent maths

def brute_pr(samples: np.ndarray, reference: np.ndarray, k: int = 3) -> tuple[float, float]:
    """The definition, written out: squared L2 by explicit differences, radius = (k+1)-th
    smallest of the row (itself included), inclusive membership."""
    def d2(a, b):
        return ((a[:, None, :].astype(np.float64) - b[None, :, :]) ** 2).sum(-1)

    r_s = np.sort(d2(samples, samples), axis=1)[:, k]
    r_r = np.sort(d2(reference, reference), axis=1)[:, k]
    cross = d2(samples, reference)
    precision = (cross <= r_r[None, :]).any(1).mean()
    recall = (cross <= r_s[:, None]).any(0).mean()
    return float(precision), float(recall)


def adm_is(logits: np.ndarray, split_size: int = 5000) -> float:
    """ADM evaluator's compute_inception_score, on logits (its softmax of pool_3 @ W)."""
    x = logits.astype(np.float64)
    p = np.exp(x - x.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    scores = []
    for i in range(0, len(p), split_size):
        part = p[i:i + split_size]
        kl = part * (np.log(part) - np.log(np.mean(part, 0, keepdims=True)))
        scores.append(np.exp(np.mean(np.sum(kl, 1))))
    return float(np.mean(scores))


def frechet_eigh(mu1, s1, mu2, s2) -> float:
    """tr sqrt(S1 S2) as the eigenvalues of sqrt(S2) S1 sqrt(S2) (numpy, no torch)."""
    w, v = np.linalg.eigh(s2)
    r = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    ev = np.linalg.eigvalsh(r @ s1 @ r)
    d = mu1 - mu2
    return float(d @ d + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(ev, 0, None)).sum())


# ----------------------------------------------------------------------------- P/R maths

def _integer_sets(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Small-integer features (exact in float32 and float16): duplicated points and many equal
    distances, so ties at the radius decide membership."""
    rng = np.random.default_rng(seed)
    s = rng.integers(0, 3, size=(23, 5)).astype(np.float32)
    r = rng.integers(0, 3, size=(17, 5)).astype(np.float32)
    s[5] = s[4]
    s[6] = s[4]                       # a triple
    r[3] = r[2]
    r[9] = s[0]                       # a sample equal to a reference
    return s, r


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("block", [3, 4096])
def test_pr_equals_brute_force_with_duplicates_and_ties(seed, block):
    s, r = _integer_sets(seed)
    pr = precision_recall(torch.from_numpy(s), torch.from_numpy(r), block=block)
    assert (pr.precision, pr.recall) == brute_pr(s, r)
    # integers are exact in float16 too: ADM's cast changes nothing here
    pr16 = precision_recall(torch.from_numpy(s), torch.from_numpy(r), block=block, distances="fp16")
    assert (pr16.precision, pr16.recall) == (pr.precision, pr.recall)


def test_pr_ties_at_the_radius_are_inside():
    # references on a line 0,1,2,3: radius of each = 4th smallest incl. itself = (3)^2 at the ends
    r = np.array([[0.0], [1.0], [2.0], [3.0]], np.float32)
    s = np.array([[6.0], [-3.0], [-3.1], [7.0]], np.float32)     # 6: exactly 3 from 3 -> inside
    pr = precision_recall(torch.from_numpy(s), torch.from_numpy(r))
    assert pr.precision == 0.5 == brute_pr(s, r)[0]              # 6 and -3 inside, -3.1 and 7 not
    assert torch.equal(radii(torch.from_numpy(r)), torch.tensor([9.0, 4.0, 4.0, 9.0]))


def test_pr_agrees_with_torch_fidelity_prc():
    from torch_fidelity.metric_prc import prc_features_to_metric

    rng = np.random.default_rng(7)
    gen = rng.normal(size=(150, 64)).astype(np.float32)
    real = (rng.normal(size=(120, 64)) * 1.2 + 0.1).astype(np.float32)
    ours = precision_recall(torch.from_numpy(gen), torch.from_numpy(real), block=50)
    # torch-fidelity: features_1 = generated, features_2 = real
    tf = prc_features_to_metric(torch.from_numpy(gen), torch.from_numpy(real), prc_neighborhood=3,
                                prc_batch_size=10000, save_cpu_ram=False, verbose=False)
    assert abs(ours.precision - tf["precision"]) <= 1 / len(gen)
    assert abs(ours.recall - tf["recall"]) <= 1 / len(real)
    assert 0 < ours.precision < 1 and 0 < ours.recall < 1        # not a degenerate comparison
    assert (ours.precision, ours.recall) == brute_pr(gen, real)


def test_sq_distances_clamp_and_fp16_fallback():
    u = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert torch.equal(sq_distances(u, u).diagonal(), torch.zeros(2))
    big = torch.full((2, 4), 300.0)                # |u|^2 = 360000 overflows float16 -> float32 block
    d = sq_distances(big, big, "fp16")
    assert torch.isfinite(d).all() and torch.equal(d, torch.zeros(2, 2))
    with pytest.raises(ValueError):
        precision_recall(torch.zeros(3, 2), torch.zeros(5, 2))     # fewer than k+1 points


# ----------------------------------------------------------------------------- IS rule

@pytest.mark.numerics
@pytest.mark.parametrize("n", [12000, 5000, 37])
def test_adm_is_rule_equals_numpy_formula(n):
    g = torch.Generator().manual_seed(n)
    logits = torch.randn(n, 1008, generator=g, dtype=torch.float64) * 3
    ours, _ = S.inception_score(logits, block=S.ADM_IS_BLOCK)
    # float64 on both sides; measured rel diff <= 5.3e-15 (ATEN_CPU_CAPABILITY=default|avx2,
    # OMP_NUM_THREADS=1|3, MKL_CBWR=AVX2)
    assert ours == pytest.approx(adm_is(logits.numpy()), rel=1e-6)
    assert S.is_split_of(n, block=5000).tolist() == (np.arange(n) // 5000).tolist()


# ----------------------------------------------------------------------------- end to end

def _tf_extract(images_nhwc: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """pool_3, logits_unbiased and Mixed_6d.branch1x1 (hook; NHWC first 7 channels) from
    torch-fidelity's own FeatureExtractorInceptionV3."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                      feature_extractor_weights_path=str(inception_file())).eval()
    kept = {}
    net.Mixed_6d.branch1x1.register_forward_hook(lambda m, i, o: kept.__setitem__("s", o))
    x = torch.from_numpy(images_nhwc).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        f, lg = net(x)
    sp = kept["s"].movedim(1, -1)[..., :7].reshape(len(x), -1)
    return f.double().numpy(), lg.double().numpy(), sp.double().numpy()


@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    """`eval all --splits adm` of S.npz against an ADM reference batch R.npz (8 images in
    arr_0; mu_s/sigma_s made by hand from torch-fidelity's hooked features of those images),
    and torch-fidelity's features of both sets."""
    from typer.testing import CliRunner

    from bigganctl.cli.app import app

    d = tmp_path_factory.mktemp("sfidpr")
    s_img, r_img = smooth_images(N_S, 1, size=32, grid=4), smooth_images(N_R, 3, size=32, grid=8)
    rng = np.random.default_rng(11)
    tf_s, tf_r = _tf_extract(s_img), _tf_extract(r_img)
    # hand-made spatial statistics in NHWC order: those of the reference images, regularised
    mu_s, sigma_s = tf_r[2].mean(0), np.cov(tf_r[2], rowvar=False) + 0.01 * np.eye(2023)
    np.savez(d / "S.npz", arr_0=s_img)
    np.savez(d / "R.npz", arr_0=r_img, mu=rng.random(2048), sigma=np.eye(2048), mu_s=mu_s, sigma_s=sigma_s)
    r = CliRunner().invoke(app, ["eval", "all", "--images", str(d / "S.npz"), "--ref", str(d / "R.npz"),
                                 "--splits", "adm", "--json", "--inception-weights", str(inception_file()),
                                 "--device", "cpu", "--batch-size", "5", "--force"], catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    return {"res": json.loads(r.stdout), "s": tf_s, "r": tf_r, "dir": d,
            "mu_s": mu_s, "sigma_s": sigma_s, "stderr": r.stderr}


@pytest.mark.numerics
def test_eval_all_gives_the_five_numbers(e2e):
    res = e2e["res"]
    for key in ("fid", "sfid", "is_mean", "precision", "recall", "kid_mean"):
        assert isinstance(res[key], float), key
    assert res["metrics"] == ["fid", "is", "kid", "sfid", "precision", "recall"]
    assert res["is_rule"] == "adm" and res["is_splits"] == 1 and res["pr_k"] == 3
    assert res["pr_distances"] == "fp32" and res["pr_reference_count"] == N_R


@pytest.mark.numerics
def test_sfid_equals_hook_on_torch_fidelity(e2e):
    sp = e2e["s"][2]
    assert sp.shape == (N_S, 2023)
    want = frechet_eigh(sp.mean(0), np.cov(sp, rowvar=False), e2e["mu_s"], e2e["sigma_s"])
    # our channels_last features vs torch-fidelity's NCHW ones: measured rel diff <= 1.7e-8
    # (ATEN_CPU_CAPABILITY=default|avx2, OMP_NUM_THREADS=1|3, MKL_CBWR=AVX2)
    assert e2e["res"]["sfid"] == pytest.approx(want, rel=1e-5)
    # the known porting bug (NCHW flattening of the same 7 channels) gives another number
    nchw = sp.reshape(N_S, 17, 17, 7).transpose(0, 3, 1, 2).reshape(N_S, -1)
    bug = frechet_eigh(nchw.mean(0), np.cov(nchw, rowvar=False), e2e["mu_s"], e2e["sigma_s"])
    assert abs(bug - want) > 0.05 * abs(want)


@pytest.mark.numerics
def test_pipeline_pr_and_is_match_independent_ones(e2e):
    f_s, lg_s, _ = e2e["s"]
    f_r = e2e["r"][0]
    p, r = brute_pr(f_s.astype(np.float32), f_r.astype(np.float32))
    # measured: equal under all four kernel sets below; one point's share allowed (features
    # differ from torch-fidelity's in the last bits, so a point at a radius may change side)
    assert abs(e2e["res"]["precision"] - p) <= 1 / N_S and abs(e2e["res"]["recall"] - r) <= 1 / N_R
    # torch-fidelity's prc on its inception-v3-compat layer-2048 features, neighbourhood 3
    # (features_1 = generated, features_2 = real)
    from torch_fidelity.metric_prc import prc_features_to_metric

    tf = prc_features_to_metric(torch.from_numpy(f_s).float(), torch.from_numpy(f_r).float(), prc_neighborhood=3,
                                prc_batch_size=10000, save_cpu_ram=False, verbose=False)
    assert abs(e2e["res"]["precision"] - tf["precision"]) <= 1 / N_S
    assert abs(e2e["res"]["recall"] - tf["recall"]) <= 1 / N_R
    # measured rel diff <= 3.6e-8 (ATEN_CPU_CAPABILITY=default|avx2, OMP_NUM_THREADS=1|3, MKL_CBWR=AVX2)
    assert e2e["res"]["is_mean"] == pytest.approx(adm_is(lg_s), rel=1e-6)


# ----------------------------------------------------------------------------- what a reference can give

def _cli(*args):
    from typer.testing import CliRunner

    from bigganctl.cli.app import app

    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def plain(e2e):
    """Statistics without features and without mu_s/sigma_s, and a 3-image batch."""
    from bigganctl.metrics.features import extractor_id, weights_sha256
    from bigganctl.metrics.reference import Stats, write_stats

    d = e2e["dir"]
    meta = {"extractor_id": extractor_id(weights_sha256(inception_file())), "resolution": 32}
    write_stats(d / "plain.npz", Stats(np.zeros(2048), np.eye(2048), None, meta))
    np.savez(d / "S3.npz", arr_0=smooth_images(3, 4, size=32, grid=4))
    return d


@pytest.mark.parametrize("cmd, what", [("sfid", "sFID"), ("pr", "precision/recall"), ("recall", "precision/recall")])
def test_named_metric_the_reference_cannot_give_is_refused(plain, cmd, what):
    r = _cli("eval", cmd, "--images", plain / "S.npz", "--ref", plain / "plain.npz", "--inception-weights",
             inception_file(), "--device", "cpu")
    assert r.exit_code == 2 and f"{what} needs them" in r.stderr and "Traceback" not in r.stderr


def test_gate_needs_its_metric(plain):
    r = _cli("eval", "fid", "--images", plain / "S.npz", "--ref", plain / "plain.npz", "--min-recall", "0.5")
    assert r.exit_code == 2 and "--min-recall" in r.stderr


def test_all_leaves_what_the_reference_cannot_give_null_with_one_note_each(plain):
    r = _cli("eval", "all", "--images", plain / "S3.npz", "--ref", plain / "plain.npz", "--splits", "adm",
             "--json", "--inception-weights", inception_file(), "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["metrics"] == ["fid", "is"] and isinstance(res["fid"], float)
    assert res["sfid"] is res["precision"] is res["recall"] is res["kid_mean"] is None
    for note in ("sFID not computed", "precision/recall not computed", "KID not computed"):
        assert r.stderr.count(note) == 1, note


def test_all_with_too_few_samples_for_pr_drops_them_with_a_note(plain):
    r = _cli("eval", "all", "--images", plain / "S3.npz", "--ref", plain / "R.npz", "--splits", "adm", "--force",
             "--json", "--inception-weights", inception_file(), "--device", "cpu", "--kid-subset-size", "3")
    assert r.exit_code == 0, r.stderr
    res = json.loads(r.stdout)
    assert isinstance(res["sfid"], float) and res["precision"] is None and res["recall"] is None
    assert r.stderr.count("precision/recall not computed: 3 samples") == 1
    r = _cli("eval", "pr", "--images", plain / "S3.npz", "--ref", plain / "R.npz", "--force",
             "--inception-weights", inception_file(), "--device", "cpu")
    assert r.exit_code == 2 and "at least 4 samples" in r.stderr


@pytest.mark.numerics
def test_resumed_accumulators_give_the_same_sfid_and_features():
    """A checkpoint's state (sFID sums, kept features, ADM IS splits) resumes to the numbers
    of an uninterrupted run (the same batches: bit-identical float64 sums)."""
    from bigganctl.metrics.extract import new_accumulators

    g = torch.Generator().manual_seed(0)
    spatial, feats, logits = torch.rand(9, 2023, generator=g), torch.rand(9, 2048, generator=g), \
        torch.randn(9, 1008, generator=g)

    def acc():
        return new_accumulators(n_total=9, need_fid=True, is_splits=10, keep_features=True,
                                device=torch.device("cpu"), need_sfid=True, is_block=5000)

    def feed(a, lo, hi):
        a.sfid.update(spatial[lo:hi])
        a.fid.update(feats[lo:hi])
        a.isc.update(logits[lo:hi], lo)
        a.feats.append(feats[lo:hi])
        a.done = hi

    whole, first = acc(), acc()
    feed(whole, 0, 4)
    feed(whole, 4, 9)
    feed(first, 0, 4)
    resumed = acc()
    resumed.load_state_dict(first.state_dict())
    feed(resumed, 4, 9)
    mu_s, sigma_s = np.full(2023, 0.5), np.eye(2023) * 0.1
    assert resumed.sfid.frechet_distance(mu_s, sigma_s) == whole.sfid.frechet_distance(mu_s, sigma_s)
    assert np.array_equal(resumed.features(), whole.features()) and resumed.isc.splits == 1
    assert resumed.isc.result() == whole.isc.result()
