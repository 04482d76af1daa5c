"""torchrun (2 CPU processes, gloo) gives the results of one process: `sample` (npz bytes,
image files, grid), `stats compute` (mu/sigma to float64 round-off, the same features),
`sweep` (rows equal to `eval all` at the same world size), `eval`; a process that fails ends
the job with no output under a final name (`sample` leaves its resumable part file and state). One torchrun job runs every command (tests/_torchrun_cli.py):
starting torch and the process group is most of a small run's cost. Separate
`torchrun -m bigganctl` jobs (eval in tests/cli/test_eval.py, the documented spelling here) are in
the slow tier."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from _metrics_util import inception_file, smooth_images, write_folder
from bigganctl.testing import hf
from bigganctl.metrics.features import extractor_id, weights_sha256
from bigganctl.metrics.reference import Stats, read_stats, write_stats

ROOT = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).resolve().parents[1] / "_torchrun_cli.py"
#: A BigGAN-deep at 8 px with 1000 classes: the real architecture and loader, milliseconds a sample.
from _tiny_configs import TINY  # noqa: E402
N = 7                        # odd: the two shares differ in size (3 and 4)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(args, *, env, nproc: int = 2, module: bool = False, timeout: float = 600):
    """``torchrun --nproc_per_node 2 (-m bigganctl | the runner) ARGS`` on 127.0.0.1."""
    target = ["-m", "bigganctl"] if module else [str(RUNNER)]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
           "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), *target, *map(str, args)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"          # torchrun's default; the one-process runs use 1 thread too
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests")])
    return env


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The inputs: a tiny model folder, an image folder, 8 px reference statistics."""
    d = tmp_path_factory.mktemp("torchrun")
    model = hf.write_random_checkpoint(d / "tiny", TINY, seed=3)
    images = write_folder(d / "imgs", smooth_images(N, 5, size=16, grid=4))
    rng = np.random.default_rng(0)
    feats = (0.2 + 0.01 * rng.random((N, 2048))).astype(np.float32)
    f64 = feats.astype(np.float64)
    meta = {"extractor_id": extractor_id(weights_sha256(inception_file())), "resolution": 8, "count": N}
    ref = d / "ref.npz"
    a = rng.normal(size=(2023, 9)) * 0.1           # sFID's spatial statistics (eval all gives sFID too)
    write_stats(ref, Stats(f64.mean(0), np.cov(f64, rowvar=False), feats, meta, rng.random(2023) * 0.2,
                           a @ a.T + 1e-3 * np.eye(2023)))
    return {"dir": d, "model": Path(model), "images": images, "ref": ref}


def commands(w, out: Path) -> dict[str, list]:
    """The commands compared, writing under ``out``."""
    inc = ["--inception-weights", inception_file(), "--device", "cpu"]
    model = ["--model", w["model"], "--batch-size", "3"]
    sweep = ["sweep", *model, "--trunc", "0.5,1.0", "--num-samples", "6", "--metrics", "fid,kid",
             "--ref", w["ref"], "--strip-columns", "2", "--out", out / "sw", "--json", "--quiet", *inc]
    return {
        "sample": ["sample", *model, "--class", "1,207", "--num-samples", "5", "--trunc", "0.5",
                   "--out", out / "grid.png", "--npz", out / "s.npz", "--images", out / "imgs", "--quiet"],
        "sample plan": ["sample", *model, "--classes", "random", "--seed", "2", "--num-samples", str(N),
                        "--trunc", "0.5", "--npz", out / "p.npz", "--images", out / "pimgs", "--no-grid", "--quiet"],
        "stats": ["stats", "compute", w["images"], "--out", out / "st.npz", "--keep-features", "--batch-size", "3",
                  "--quiet", *inc],
        "sweep": sweep,
        "eval": ["eval", "all", *model, "--trunc", "1.0", "--num-samples", "6", "--splits", "2", "--ref", w["ref"],
                 "--json", "--quiet", "--no-resume", *inc],
        "sweep again": sweep,               # every row done: read back from the state, nothing evaluated
    }


@pytest.fixture(scope="module")
def one(world):
    """Every command in this process, with one thread (as each torchrun process has)."""
    from bigganctl.cli.app import app
    from typer.testing import CliRunner

    out = world["dir"] / "one"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    docs = {}
    try:
        for name, args in commands(world, out).items():
            r = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
            assert r.exit_code == 0, (name, r.stderr)
            docs[name] = r.stdout
    finally:
        torch.set_num_threads(threads)
    return out, docs


@pytest.fixture(scope="module")
def two(world):
    """One torchrun job: the commands, then `sample` again with rank 1 failing while it
    generates (the job's last command: it ends the job)."""
    out = world["dir"] / "two"
    cmds = commands(world, out)
    failing = ["--fail", "1:bigganctl.generate.generate_batch",
               *commands(world, world["dir"] / "failed")["sample"]]
    args = [a for c in [*cmds.values(), failing] for a in [*c, ";;"]][:-1]
    r = torchrun(args, env=child_env())
    chunks = r.stdout.split("@@END 0\n")
    assert len(chunks) == len(cmds) + 1, r.stderr[-4000:]
    return out, dict(zip(cmds, chunks)), r


@pytest.mark.numerics
def test_sample_files_are_the_files_of_one_process(one, two):
    (a, _), (b, docs, _) = one, two
    assert (a / "s.npz").read_bytes() == (b / "s.npz").read_bytes()
    assert (a / "grid.png").read_bytes() == (b / "grid.png").read_bytes()
    files = sorted(p.name for p in (a / "imgs").iterdir())
    assert len(files) == 11 and files == sorted(p.name for p in (b / "imgs").iterdir())   # 10 images + manifest
    for f in files:
        if f.endswith(".png"):
            assert (a / "imgs" / f).read_bytes() == (b / "imgs" / f).read_bytes(), f
    assert docs["sample"].count("npz:") == 1                    # rank 0 alone prints
    # an evaluation plan, each rank writing its rows of the .npz and its files straight to disk
    assert (a / "p.npz").read_bytes() == (b / "p.npz").read_bytes()
    pngs = sorted(p.name for p in (a / "pimgs").glob("*.png"))
    assert len(pngs) == N and pngs == sorted(p.name for p in (b / "pimgs").glob("*.png"))
    for f in pngs:
        assert (a / "pimgs" / f).read_bytes() == (b / "pimgs" / f).read_bytes(), f
    assert not [p for p in b.rglob(".*") if p.name != ".sweep-state.json"]   # no temporary files left


@pytest.mark.numerics
def test_stats_match_one_process_to_float64_round_off(one, two):
    (a, _), (b, _, _) = one, two
    s1, s2 = read_stats(a / "st.npz"), read_stats(b / "st.npz")
    assert s2.meta["count"] == s1.meta["count"] == N
    np.testing.assert_array_equal(s1.features, s2.features)          # same pixels, same kernels, same order
    np.testing.assert_allclose(s2.mu, s1.mu, rtol=1e-12, atol=0)     # float64 sums, added in another order
    np.testing.assert_allclose(s2.sigma, s1.sigma, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(s2.mu_s, s1.mu_s, rtol=1e-12, atol=0)
    np.testing.assert_allclose(s2.sigma_s, s1.sigma_s, rtol=1e-9, atol=1e-15)


@pytest.mark.numerics
def test_sweep_rows_are_eval_all_at_the_same_world_size(one, two):
    (a, docs1), (b, docs2, _) = one, two
    rows1 = json.loads(docs1["sweep"])["rows"]
    rows2 = json.loads(docs2["sweep"])["rows"]
    ev = json.loads(docs2["eval"])
    assert ev["world_size"] == 2
    assert [r["psi"] for r in rows2] == [0.5, 1.0]
    metrics = ("fid", "kid_mean", "kid_std")
    assert {k: rows2[1][k] for k in metrics} == {k: ev[k] for k in metrics}     # same world size: equal
    for r1, r2 in zip(rows1, rows2):                                           # one process: round-off
        for k in metrics:
            assert r2[k] == pytest.approx(r1[k], rel=1e-9), k
    assert json.loads((b / "sw" / "sweep.json").read_text())["rows"] == rows2
    assert json.loads(docs2["sweep again"])["rows"] == rows2      # resumed: the same rows, seconds too
    assert (a / "sw" / "strip.png").read_bytes() == (b / "sw" / "strip.png").read_bytes()


@pytest.mark.numerics
def test_eval_matches_one_process(one, two):
    """Shards, all-reduce, KID / precision-recall features gathered in sample order, one JSON document."""
    a, b = json.loads(one[1]["eval"]), json.loads(two[1]["eval"])
    assert (a["world_size"], b["world_size"], b["n"]) == (1, 2, 6)
    for k in ("fid", "is_mean", "is_std", "sfid"):                  # float64 sums, another order
        assert isinstance(b[k], float) and b[k] == pytest.approx(a[k], rel=1e-9), k
    assert (b["kid_mean"], b["kid_std"]) == (a["kid_mean"], a["kid_std"])   # same features, same order
    assert (b["precision"], b["recall"]) == (a["precision"], a["recall"]) and b["pr_reference_count"] == N


def test_a_failing_process_ends_the_job_and_leaves_no_output(world, one, two):
    """Rank 1 raises in the middle of generating: torchrun exits non-zero, no output carries
    its final name, and what rank 0 finished is on disk with a state record a re-run trusts."""
    from bigganctl.api import export_state as st
    from bigganctl.media import npz_stream

    r = two[2]
    assert r.returncode != 0
    assert "injected failure" in r.stderr
    # rank 0 stops with a one-line message: its peer vanished at the end of the shares, or torchrun's SIGTERM came first
    assert "another process of the job failed during collecting the shares" in r.stderr or "interrupted" in r.stderr
    failed = world["dir"] / "failed"
    final = [p for p in failed.rglob("*") if p.is_file() and not any(x.startswith(".") for x in p.relative_to(failed).parts)]
    assert final == [], final
    job = st.read_record(failed / ".s.npz.part.json")             # written before any rank generates
    assert job is not None and job["key"]["world"] == 2 and (failed / ".s.npz.part").is_file()
    rec = st.read_record(failed / ".s.npz.part.rank0.json")       # digest checked; absent if SIGTERM came first
    if rec is not None:
        lay = npz_stream.NpzLayout(10, 8, 8)                         # 2 classes x 5 seeds at 8 px
        assert rec["shard"] == [0, 5] and 0 < rec["done"] <= 5
        part, whole = (failed / ".s.npz.part").read_bytes(), (one[0] / "s.npz").read_bytes()
        rows = slice(lay.data, lay.data + rec["done"] * lay.row)
        assert part[rows] == whole[rows]                             # rank 0's rows, as one process wrote them


@pytest.mark.slow        # a second torchrun job: the failed `sample` above, re-run, resumes
@pytest.mark.numerics
def test_the_failed_sample_resumes_to_the_files_of_one_process(world, one, two):
    failed = world["dir"] / "failed"
    r = torchrun(commands(world, failed)["sample"], env=child_env())
    assert r.returncode == 0, r.stderr[-4000:]
    a = one[0]
    assert (failed / "s.npz").read_bytes() == (a / "s.npz").read_bytes()
    assert (failed / "grid.png").read_bytes() == (a / "grid.png").read_bytes()
    assert not [p for p in failed.rglob(".*")]


@pytest.mark.slow        # the same behaviour as the one-job test above, as separate documented launches
@pytest.mark.numerics
def test_documented_launch_spelling(world, one, tmp_path):
    """`torchrun ... -m bigganctl sample ... --num-samples 5` (docs/scale.md's spelling) writes
    the npz of one process; `--n` is refused by torchrun's own parser, `-n` passes."""
    a, _ = one
    args = commands(world, tmp_path)["sample"]
    r = torchrun(args, env=child_env(), module=True)
    assert r.returncode == 0, r.stderr[-4000:]
    assert (tmp_path / "s.npz").read_bytes() == (a / "s.npz").read_bytes()
    k = args.index("--num-samples")
    r = torchrun([*args[:k], "-n", *args[k + 1:], "--overwrite"], env=child_env(), module=True)
    assert r.returncode == 0, r.stderr[-4000:]
    assert (tmp_path / "s.npz").read_bytes() == (a / "s.npz").read_bytes()
    r = torchrun([*args[:k], "--n", *args[k + 1:], "--overwrite"], env=child_env(), module=True)
    assert r.returncode == 2 and "ambiguous option: --n" in r.stderr


# ----------------------------------------------------------------------------- devices (no GPU needed)

@pytest.fixture
def fake_two_ranks(monkeypatch):
    """torchrun's environment for rank 1 of 2 on a machine that claims one CUDA device."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)


@pytest.mark.parametrize("device", ["cuda:0", "cuda"])
def test_one_gpu_for_several_ranks_is_a_usage_error(cli, fake_two_ranks, tmp_path, device):
    """``cuda:N`` puts every rank on GPU N; two ranks on one GPU share it: both would end in
    NCCL's "duplicate GPU" error. Refused (exit 2) before any process group is formed."""
    r = cli("sample", "--weights", "random", "--device", device, "--out", str(tmp_path / "a.png"))
    assert r.exit_code == 2, (r.exit_code, r.stderr)
    assert "--device" in r.stderr and ("--nproc-per-node 1" in r.stderr or "CUDA_VISIBLE_DEVICES" in r.stderr)
    assert not (tmp_path / "a.png").exists()


def test_each_rank_takes_its_local_gpu(monkeypatch):
    from bigganctl.runtime.distributed import Dist, _rank_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert _rank_device("cuda", Dist(5, 8, 2)) == torch.device("cuda", 2)
    assert _rank_device("auto", Dist(3, 8, 3)) == torch.device("cuda", 3)
    assert _rank_device("cpu", Dist(3, 8, 3)) == torch.device("cpu")
