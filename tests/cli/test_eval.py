"""`bigganctl eval` / `bigganctl stats` end to end: parity with torch-fidelity on the same images
and the same (random) Inception weights, bad input, quality gates, SIGKILL + resume, torchrun."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from _killpoint import run_to_killpoint
from _metrics_util import inception_file, smooth_images, write_folder
from bigganctl.metrics.features import extractor_id, weights_sha256
from bigganctl.metrics.reference import Stats, write_stats

ROOT = Path(__file__).resolve().parents[2]
N = 20


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Folders A and B (two different image distributions) and B's statistics with features."""
    d = tmp_path_factory.mktemp("evaldata")
    a = write_folder(d / "A", smooth_images(N, 1, size=32, grid=4))
    b = write_folder(d / "B", smooth_images(N, 2, size=32, grid=8))
    return {"A": a, "B": b, "dir": d}


@pytest.fixture(scope="module")
def synthetic_ref(tmp_path_factory):
    """2048-d statistics with features, labelled with the random extractor (no forwards)."""
    rng = np.random.default_rng(0)
    feats = (0.2 + 0.01 * rng.random((N, 2048))).astype(np.float32)
    meta = {"extractor_id": extractor_id(weights_sha256(inception_file())), "resolution": 32, "count": N}
    p = tmp_path_factory.mktemp("ref") / "ref.npz"
    f64 = feats.astype(np.float64)
    write_stats(p, Stats(f64.mean(0), np.cov(f64, rowvar=False), feats, meta))
    return p


def _w():
    return ["--inception-weights", str(inception_file()), "--device", "cpu"]


def _ours(cli, data, tmp_path):
    """`stats compute B --keep-features` then `eval all --images A --ref B.npz --json` (gates missed)."""
    ref = tmp_path / "B.npz"
    r = cli("stats", "compute", data["B"], "--out", ref, "--keep-features", "--quiet", "--json", *_w())
    assert r.exit_code == 0, r.stderr
    meta = r.json()
    assert meta["count"] == N and meta["resolution"] == 32 and meta["has_features"] is True
    assert meta["extractor_id"] == extractor_id(weights_sha256(inception_file())) and meta["layer"] == "2048"
    assert meta["preprocessing"] == "none" and meta["source"] == str(data["B"].resolve())
    assert cli("stats", "compute", data["B"], "--out", ref, *_w()).exit_code == 2      # exists: --overwrite
    r = cli("eval", "all", "--images", data["A"], "--ref", ref, "--json", "--quiet", "--max-fid", "1e-9",
            "--min-is", "1000", *_w())
    assert r.exit_code == 3, r.stderr                       # both gates missed: exit 3, result printed
    assert "FID" in r.stderr and "--max-fid" in r.stderr and "--min-is" in r.stderr
    ours = r.json()
    assert ours["n"] == N and ours["kid_subset_size"] == N and "KID subset size reduced" in r.stderr
    assert ours["fid"] > 0.01 and ours["is_mean"] > 1.05        # the data is not degenerate
    return ours, ref


def _tf(data, **kw):
    import torch_fidelity

    return torch_fidelity.calculate_metrics(
        input1=str(data["A"]), input2=str(data["B"]), cuda=False, kid_subset_size=N,
        feature_extractor_weights_path=str(inception_file()), save_cpu_ram=True, verbose=False, **kw)


@pytest.mark.numerics
def test_parity_with_torch_fidelity(cli, data, tmp_path):
    """IS and KID against torch-fidelity's calculate_metrics on folders A and B (same weights file);
    FID statistics against torch-fidelity's on its own features of the same folders, and our FID
    against the exact distance of those features. (torch-fidelity's own FID number, which needs
    a 2048x2048 general eigensolver, is compared in the slow test below.)"""
    import torch
    from torch_fidelity.metric_fid import fid_features_to_statistics

    ours, ref = _ours(cli, data, tmp_path)
    cache = tmp_path / "tf-cache"
    tf = _tf(data, isc=True, kid=True, cache_root=str(cache), input1_cache_name="A", input2_cache_name="B")
    # Our extractor runs NHWC on the CPU, torch-fidelity's NCHW: features agree to float
    # rounding (5e-7 relative), and the metrics move by the measured amounts below (ATen
    # avx512, avx2, default; oneDNN capped at AVX2). KID (~5e-5 here) is a difference of
    # order-1 float32 kernel sums: torch-fidelity's own KID moves by 8e-8 between kernel sets.
    assert ours["is_mean"] == pytest.approx(tf["inception_score_mean"], rel=1e-6)      # measured 6.1e-8
    assert ours["is_std"] == pytest.approx(tf["inception_score_std"], rel=1e-5)        # 1.4e-6
    assert abs(ours["kid_mean"] - tf["kernel_inception_distance_mean"]) <= 1e-7        # 7.2e-9
    assert abs(ours["kid_std"] - tf["kernel_inception_distance_std"]) <= 5e-8          # 2.1e-9

    fa, fb = (torch.load(cache / f"{x}-inception-v3-compat-features-2048.pt", weights_only=True) for x in "AB")
    st_b = fid_features_to_statistics(fb)
    z = np.load(ref)
    # largest difference relative to the largest value; measured (same four kernel sets):
    # mu 1.9e-7, sigma 3.5e-6 (a covariance: a difference of similar sums), features 5.7e-7
    for key, want, bound in (("mu", st_b["mu"], 5e-6), ("sigma", st_b["sigma"], 2e-5),
                             ("features", fb.numpy(), 5e-6)):
        assert np.abs(z[key] - want).max() <= bound * np.abs(want).max(), key
    a, b = fa.double().numpy(), fb.double().numpy()
    ca, cb = a - a.mean(0), b - b.mean(0)
    exact = (((a.mean(0) - b.mean(0)) ** 2).sum() + ((ca ** 2).sum() + (cb ** 2).sum()) / (N - 1)
             - 2 * np.linalg.svd(ca @ cb.T, compute_uv=False).sum() / (N - 1))
    assert ours["fid"] == pytest.approx(exact, rel=1e-6)


@pytest.mark.numerics
@pytest.mark.slow
def test_parity_with_torch_fidelity_fid(cli, data, tmp_path):
    """The complete `calculate_metrics(isc, fid, kid)` of torch-fidelity, FID included."""
    ours, _ = _ours(cli, data, tmp_path)
    tf = _tf(data, isc=True, fid=True, kid=True, cache=False)
    fid_tf = tf["frechet_inception_distance"]
    if fid_tf < 0.1:
        assert abs(ours["fid"] - fid_tf) <= 1e-6
    else:
        assert ours["fid"] == pytest.approx(fid_tf, rel=1e-5)       # measured 2.8e-6 (see above)
    assert ours["is_mean"] == pytest.approx(tf["inception_score_mean"], rel=1e-6)
    assert abs(ours["kid_mean"] - tf["kernel_inception_distance_mean"]) <= 1e-7


def test_gate_miss_prints_the_table_and_exits_3(cli, data):
    r = cli("eval", "is", "--images", data["A"], "--n", "10", "--min-is", "1000", "--quiet", *_w())
    assert r.exit_code == 3
    assert "IS" in r.stdout and "n=10" in r.stdout          # the result is printed first
    assert "IS" in r.stderr and "< --min-is 1000" in r.stderr


@pytest.mark.parametrize("make_args, option", [
    (lambda d, ref: ["fid", "--images", d["A"], "--ref", ref, "--n", "0"], "--n"),
    (lambda d, ref: ["fid", "--images", d["A"], "--ref", ref, "--n", "1"], "--n"),
    (lambda d, ref: ["fid", "--images", d["A"], "--ref", d["imgs_npz"]], "--ref"),
    (lambda d, ref: ["fid", "--images", d["A"], "--ref", d["ref64"]], "--ref"),
    (lambda d, ref: ["fid", "--images", d["empty"], "--ref", ref], "--images"),
    (lambda d, ref: ["is", "--images", d["corrupt"]], "--images"),
    (lambda d, ref: ["kid", "--images", d["A"], "--ref", ref, "--kid-subset-size", "50"], "--kid-subset-size"),
    (lambda d, ref: ["fid", "--images", d["A"]], "--ref"),
    (lambda d, ref: ["fid", "--images", d["A"], "--ref", "imagenet-12"], "--ref"),
    (lambda d, ref: ["is", "--images", d["A"], "--max-fid", "3"], "--max-fid"),
    (lambda d, ref: ["is", "--images", d["A"], "--model", "biggan-deep-128"], "--images"),
])
def test_bad_input_exits_2_with_a_message(cli, data, synthetic_ref, tmp_path, make_args, option):
    d = dict(data)
    np.savez(tmp_path / "imgs.npz", arr_0=np.zeros((4, 8, 8, 3), np.uint8))
    d["imgs_npz"] = tmp_path / "imgs.npz"
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "ref64.npz", mu=rng.random(64), sigma=np.eye(64))
    d["ref64"] = tmp_path / "ref64.npz"
    (tmp_path / "empty").mkdir()
    d["empty"] = tmp_path / "empty"
    write_folder(tmp_path / "corrupt", smooth_images(10, 0, size=8))
    (tmp_path / "corrupt" / "0003.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    d["corrupt"] = tmp_path / "corrupt"
    r = cli("eval", *make_args(d, synthetic_ref), "--quiet", *_w())
    assert r.exit_code == 2, (r.stdout, r.stderr)
    assert option in r.stderr and "Traceback" not in r.stderr and r.stdout == ""
    if "corrupt" in str(make_args(d, synthetic_ref)):
        assert "0003.png" in r.stderr


def test_extractor_mismatch_is_refused_unless_forced(cli, data, tmp_path):
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "I128_inception_moments.npz", mu=rng.random(2048), sigma=np.eye(2048) * 0.01)
    r = cli("eval", "fid", "--images", data["A"], "--ref", tmp_path / "I128_inception_moments.npz", "--n", "2",
            "--quiet", *_w())
    assert r.exit_code == 2 and "torchvision" in r.stderr and "--force" in r.stderr


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _bigganctl(*args):
    return [sys.executable, "-m", "bigganctl", *map(str, args)]


@pytest.mark.numerics
def test_sigkill_then_restart_gives_the_same_numbers(cli, data, synthetic_ref):
    args = ["eval", "fid", "--images", data["A"], "--ref", synthetic_ref, "--n", "8", "--batch-size", "4",
            "--checkpoint-every", "4", "--json", "--quiet", *_w()]
    full = cli(*args, "--no-resume")                                 # uninterrupted, in this process
    assert full.exit_code == 0, full.stderr
    runs = Path(os.environ["BIGGANCTL_HOME"]) / "runs"
    # frozen right after the first checkpoint (4 of 8 samples) is in place, then killed
    assert run_to_killpoint(args, ["eval-*.pt"], _env()) == -signal.SIGKILL
    assert list(runs.glob("eval-*.pt"))
    again = cli(*args)                                               # resumed, in this process
    assert again.exit_code == 0, again.stderr
    a, b = full.json(), again.json()
    assert b["resumed_from"] == 4 and a["resumed_from"] == 0
    assert b["fid"] == a["fid"]
    assert not list(runs.glob("eval-*.pt"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow        # the fast tier checks the same in tests/runtime/test_distributed.py (one job for every command)
@pytest.mark.numerics
def test_torchrun_two_processes_match_one(cli, data, tmp_path):
    """torchrun --nproc_per_node 2 (gloo on CPU): shards, all-reduce, gathered KID features,
    one JSON document from rank 0; same numbers as one process. The reference is an ADM-format
    batch (10 images, no features): its KID features are computed sharded too, gathered in
    order and cached by rank 0 (in a cache of its own, so the one-process run's is not used)."""
    adm = tmp_path / "adm.npz"
    rng = np.random.default_rng(3)
    np.savez(adm, arr_0=smooth_images(10, 4, size=32, grid=8), mu=rng.random(2048), sigma=np.eye(2048),
             mu_s=np.zeros(4), sigma_s=np.eye(4))
    args = ["eval", "all", "--images", data["A"], "--ref", adm, "--force", "--batch-size", "5", "--json", "--quiet",
            "--no-resume", *_w()]
    env = _env()
    env["BIGGANCTL_HOME"] = str(tmp_path / "home2")
    env["OMP_NUM_THREADS"] = "1"          # torchrun's default; same kernels -> bit-identical features
    threads = torch.get_num_threads()
    torch.set_num_threads(1)              # the one-process run, here, on the same kernels
    try:
        one = cli(*args)
    finally:
        torch.set_num_threads(threads)
    assert one.exit_code == 0, one.stderr
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "bigganctl", *map(str, args)]
    two = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert two.returncode == 0, two.stderr
    a, b = one.json(), json.loads(two.stdout)                      # exactly one JSON document
    assert b["world_size"] == 2 and b["n"] == a["n"] == N
    for k in ("fid", "is_mean", "is_std"):                          # float64 sums, another order
        assert b[k] == pytest.approx(a[k], rel=1e-9), k
    assert (b["kid_mean"], b["kid_std"]) == (a["kid_mean"], a["kid_std"])   # same features, same order
    assert a["kid_subset_size"] == 10 and len(list((tmp_path / "home2" / "stats" / "features").glob("*.npz"))) == 1


@pytest.mark.slow        # the sweep and torchrun tests evaluate generators straight into the extractor too
def test_eval_a_random_biggan_deep_straight_from_the_generator(cli, synthetic_ref):
    """The real loader with --weights random, samples straight into the extractor (no files)."""
    r = cli("eval", "all", "--model", "biggan-deep-128", "--weights", "random", "--n", "10", "--batch-size", "5",
            "--trunc", "0.5", "--ref", synthetic_ref, "--force", "--json", "--quiet", *_w())
    assert r.exit_code == 0, r.stderr
    res = r.json()
    assert res["model"] == "biggan-deep-128" and res["weights"] == "random" and res["n"] == 10
    assert res["trunc"] == 0.5 and res["trunc_convention"] == "deepmind" and res["classes"] == "balanced"
    assert math.isfinite(res["fid"]) and res["fid"] > 0 and res["kid_subset_size"] == 10
    # analytic: 10 samples in IS's 10 splits leave one per split, whose marginal is its own
    # prediction, so every split scores exp(KL(p || p)) = 1
    assert res["is_mean"] == pytest.approx(1.0, abs=1e-9) and res["is_std"] == pytest.approx(0.0, abs=1e-9)
    assert "resolution 32" in r.stderr            # the 32 px reference was forced against 128 px samples
