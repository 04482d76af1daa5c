"""examples/ci/benchmark.sh, the example CI job (docs/ci.md), run as a CI runner would.

Slow tier: end to end on random biggan-deep-128 weights, a random Inception file and a small
reference, offline: a run that writes the baseline, a run judged against it (exit 0), and a
run against a baseline made better than anything the run can reach (exit 3).
Fast tier: the job's control flow with a stand-in ``bigganctl`` that prints the committed
baseline's documents for bench and eval (the real ``compare`` judges them).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from _metrics_util import inception_file, random_extractor_stats
from _schemas import validate

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "ci" / "benchmark.sh"
BASELINE = ROOT / "examples" / "ci" / "baseline"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def smoke_reference(path: Path) -> Path:
    """128 px statistics with 40 features, labelled with the random Inception file's extractor."""
    return random_extractor_stats(path, features=True)


def job_env(work: Path, bigganctl: str, **extra: str) -> dict[str, str]:
    """The smoke configuration of docs/ci.md: random weights, a reference file, N=10."""
    env = {k: v for k, v in os.environ.items() if k != "GITHUB_STEP_SUMMARY"}
    env.update(PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
               BIGGANCTL=bigganctl, MODEL="biggan-deep-128", WEIGHTS="random", REF="smoke-ref.npz",
               INCEPTION_WEIGHTS=str(inception_file()), DEVICE="cpu", N="10", BENCH_N="4", BENCH_FEATURES="0",
               # a shared 2-core test machine: throughput swings far beyond the default -10%
               BENCH_TOL="images_per_s=-95%", OUT=str(work / "out"), BASELINE_DIR=str(work / "baseline"),
               OMP_NUM_THREADS="2")
    env.update(extra)
    return env


def run_job(work: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT)], cwd=work, env=env, capture_output=True, text=True, timeout=900)


def make_better(baseline_dir: Path) -> None:
    """A baseline no run can match: FID halved, IS doubled."""
    p = baseline_dir / "eval.json"
    doc = json.loads(p.read_text())
    doc["fid"] *= 0.5
    doc["is_mean"] *= 2
    p.write_text(json.dumps(doc, indent=2))


@pytest.mark.slow
def test_benchmark_job_end_to_end(tmp_path):
    """Three runs of the job, about 40 s of CPU on 2 cores (six processes with torch)."""
    smoke_reference(tmp_path / "smoke-ref.npz")
    env = job_env(tmp_path, f"{sys.executable} -m bigganctl")

    first = run_job(tmp_path, {**env, "UPDATE_BASELINE": "1"})
    assert first.returncode == 0, first.stderr
    for name in ("eval", "bench"):
        doc = json.loads((tmp_path / "baseline" / f"{name}.json").read_text())
        validate(doc, name)
    assert json.loads((tmp_path / "baseline" / "eval.json").read_text())["n"] == 10

    again = run_job(tmp_path, {**env, "OUT": str(tmp_path / "out2"), "SWEEP_GRID": "1.0"})
    assert again.returncode == 0, again.stderr
    summary = (tmp_path / "out2" / "summary.md").read_text()
    assert (tmp_path / "out2" / "sweep" / "sweep.png").is_file()
    assert f"Plot: [sweep.png]({tmp_path / 'out2' / 'sweep' / 'sweep.png'})" in summary
    validate(json.loads((tmp_path / "out2" / "sweep" / "sweep.json").read_text()), "sweep")
    for title in ("### bigganctl bench", "### bigganctl eval all", "### bigganctl compare: eval",
                  "### bigganctl compare: bench"):
        assert title in summary
    assert summary.count("✅ no regression") == 2          # the same code, the same seeds: the same numbers

    make_better(tmp_path / "baseline")
    worse = run_job(tmp_path, {**env, "OUT": str(tmp_path / "out3")})
    assert worse.returncode == 3, worse.stderr
    assert "regression against" in worse.stderr and "fid" in worse.stderr
    assert "❌ **regression**: fid, is_mean" in (tmp_path / "out3" / "summary.md").read_text()
    validate(json.loads((tmp_path / "out3" / "eval.json").read_text()), "eval")


def _stand_in(tmp_path: Path, canned: Path) -> str:
    """A ``bigganctl`` that prints ``canned``/bench.json and eval.json instead of measuring."""
    shim = tmp_path / "bigganctl-stand-in"
    shim.write_text("#!/usr/bin/env bash\n"
                    f'case "$1" in bench|eval) cat "{canned}/$1.json" ;; '
                    f'*) exec "{sys.executable}" -m bigganctl "$@" ;; esac\n')
    shim.chmod(0o755)
    return str(shim)


def test_committed_baseline_matches_the_schemas():
    for name in ("eval", "bench"):
        validate(json.loads((BASELINE / f"{name}.json").read_text()), name)


def test_benchmark_job_passes_and_fails_on_a_regression(tmp_path):
    """The job against the committed baseline: the same numbers pass (the bench baseline's
    machine differs: throughput is noted as not compared); a better baseline fails with exit 3."""
    canned = tmp_path / "canned"
    shutil.copytree(BASELINE, canned)
    bench = json.loads((canned / "bench.json").read_text())
    bench["system"]["cpu"] = "another CPU"
    (canned / "bench.json").write_text(json.dumps(bench))
    baseline = tmp_path / "baseline"
    shutil.copytree(BASELINE, baseline)
    (tmp_path / "smoke-ref.npz").touch()               # read by nobody here (the eval is canned)
    env = job_env(tmp_path, _stand_in(tmp_path, canned), BASELINE_DIR=str(baseline))

    ok = run_job(tmp_path, env)
    assert ok.returncode == 0, ok.stderr
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "### bigganctl compare: eval\n\n✅ no regression" in summary
    assert "Throughput not compared: the protocols differ (system.cpu:" in summary

    make_better(baseline)
    bad = run_job(tmp_path, {**env, "OUT": str(tmp_path / "out-bad")})
    assert bad.returncode == 3, bad.stderr
    assert "compare eval: gate missed or regression (exit 3)" in bad.stderr
