"""The sweep (bigganctl.api.sweep), run in-process through `bigganctl sweep`: outputs, rows
equal to `eval all` per psi, resuming (finished, changed settings, SIGKILL during the second
psi), two models overlaid, the sFID/precision/recall columns and panel, every shape of the
progress argument. Random biggan-deep-128 and a random Inception file on the CPU; N kept
small. The command's own checks (bad input, foreign outputs, the verbatim acceptance command)
are in tests/cli/test_sweep.py."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest

from _killpoint import run_to_killpoint
from _metrics_util import fake_rows, inception_file
from _sweep_util import COLUMNS, TILE, common_args, invoke, png, read_csv, sweep_env
from bigganctl.metrics.reference import Stats, read_stats, write_stats

ROOT = Path(__file__).resolve().parents[2]
METRICS = ("fid", "is_mean", "is_std", "kid_mean", "kid_std")
N = 10                       # the least the Inception Score's 10 splits allow


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    yield from sweep_env(tmp_path_factory)


@pytest.fixture(scope="module")
def swept(env, tmp_path_factory):
    """The acceptance command at N=10 with KID too: psi 0.2, 0.6, 1.0."""
    out = tmp_path_factory.mktemp("sweep") / "S"
    args = ["sweep", *common_args(env["ref"]), "--trunc", "0.2:1.0:0.4", "--n", N, "--metrics", "fid,is,kid",
            "--strip-columns", "2", "--out", out, "--json"]
    code, stdout, stderr = invoke(*args)
    assert code == 0, stderr
    return {"out": out, "args": args, "stdout": stdout, "stderr": stderr, **env}


def test_outputs(swept):
    out = swept["out"]
    rows = read_csv(out / "sweep.csv")
    assert list(rows[0]) == COLUMNS
    assert [float(r["psi"]) for r in rows] == [0.2, 0.6, 1.0]
    assert all(r["convention"] == "deepmind" and r["n"] == str(N) for r in rows)
    doc = json.loads(swept["stdout"])                    # exactly one JSON document on stdout
    assert doc == json.loads((out / "sweep.json").read_text())
    assert doc["psis"] == [0.2, 0.6, 1.0] and doc["settings"]["n"] == N and doc["settings"]["seeds"] == "0-9"
    for r, d in zip(rows, doc["rows"]):                  # the CSV holds the same floats exactly
        assert list(d) == COLUMNS
        assert all(float(r[k]) == d[k] for k in METRICS) and d["fid"] > 0 and d["kid_mean"] is not None
    assert len({d["fid"] for d in doc["rows"]}) == 3     # psi changes the numbers
    plot = png(out / "sweep.png")
    assert plot.size[0] > 2 * plot.size[1]               # trade-off curve and metrics vs psi side by side
    strip = png(out / "strip.png")
    assert strip.size == (2 * TILE + 2, 3 * TILE + 2)    # 3 rows (psi) of 2 tiles
    px = np.asarray(strip.convert("RGB"))
    rows_px = [px[2 + k * TILE: 2 + k * TILE + 128, 2:130] for k in range(3)]
    assert not np.array_equal(rows_px[0], rows_px[2])    # psi 0.2 vs 1.0: same z, other picture
    man = json.loads((out / "manifest.json").read_text())
    assert man["kind"] == "bigganctl.sweep" and man["psis"] == [0.2, 0.6, 1.0]
    assert man["strip"]["seeds"] == [0, 1] and man["strip"]["classes"] == [0, 1]
    assert [r["psi"] for r in man["strip"]["rows"]] == [0.2, 0.6, 1.0]
    assert man["models"][0]["sha256"] == "random"
    assert "psi: 0.2, 0.6, 1" in swept["stderr"]          # the values used are printed


@pytest.mark.numerics
def test_rows_equal_eval_all_per_psi(swept):
    """Common random numbers: a row is `eval all` for that psi alone, to the last bit. The
    last row (the loop's state has moved on twice by then); every row: slow."""
    _check_rows_equal_eval_all(swept, [-1])


@pytest.mark.slow
@pytest.mark.numerics
def test_every_row_equals_eval_all(swept):
    _check_rows_equal_eval_all(swept, [0, 1, 2])


def _check_rows_equal_eval_all(swept, which):
    doc = json.loads((swept["out"] / "sweep.json").read_text())
    for row in [doc["rows"][i] for i in which]:
        code, stdout, stderr = invoke("eval", "all", *common_args(swept["ref"]), "--n", N, "--trunc", repr(row["psi"]),
                                       "--json", "--quiet")
        assert code == 0, stderr
        res = json.loads(stdout)
        assert res["trunc"] == row["psi"] and res["n"] == row["n"] and res["trunc_convention"] == row["convention"]
        for k in METRICS:
            assert res[k] == row[k], (row["psi"], k)


def test_rerun_after_finish_does_no_evaluation(swept, monkeypatch):
    import bigganctl.weights.loader
    import bigganctl.metrics.evaluation
    import bigganctl.metrics.features

    def boom(*a, **k):
        raise AssertionError("a finished sweep must not load or evaluate anything")

    monkeypatch.setattr(bigganctl.metrics.evaluation, "evaluate_source", boom)
    monkeypatch.setattr(bigganctl.metrics.features, "InceptionFeatures", boom)
    monkeypatch.setattr(bigganctl.weights.loader, "load_generator", boom)
    out = swept["out"]
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.iterdir()}
    code, stdout, stderr = invoke(*swept["args"])
    assert code == 0, stderr
    assert "nothing to evaluate" in stderr and stderr.count("(earlier run)") == 3
    assert json.loads(stdout) == json.loads((out / "sweep.json").read_text())
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.iterdir()} == before


def test_changed_settings_start_fresh(swept, tmp_path, monkeypatch):
    """Another seed: the earlier rows are dropped (said on stderr), every psi is evaluated."""
    calls = []

    def fake(psi, n, protocol):
        calls.append(psi)
        return {"trunc_convention": "deepmind", "fid": 10 * psi, "is_mean": 2.0, "is_std": 0.1,
                "kid_mean": None, "kid_std": None, "sfid": None, "precision": None, "recall": None, "n": n, "seconds": 0.0}

    fake_rows(monkeypatch, fake)
    out = tmp_path / "S"
    shutil.copytree(swept["out"], out)
    args = [a if a != swept["out"] else out for a in swept["args"]]
    args = [*args[:args.index("--strip-columns")], "--strip-columns", "0", "--seed", "1"]
    code, stdout, stderr = invoke(*args, "--out", out, "--json")
    assert code == 0, stderr
    assert "settings changed" in stderr and "seed 0 -> 1" in stderr and "starting fresh" in stderr
    assert calls == [0.2, 0.6, 1.0]
    assert [r["fid"] for r in json.loads(stdout)["rows"]] == [2.0, 6.0, 10.0]
    assert not (out / "strip.png").exists()              # --strip-columns 0: no stale strip left


def _env(home: Path) -> dict:
    env = dict(os.environ)
    env.update(PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""), BIGGANCTL_HOME=str(home), BIGGANCTL_OFFLINE="1")
    return env


@pytest.mark.numerics
def test_sigkill_during_second_psi_then_rerun_gives_the_same_files(env, tmp_path, monkeypatch):
    args = ["sweep", *common_args(env["ref"]), "--trunc", "0.5,1.0", "--n", "4", "--metrics", "fid",
            "--strip-columns", "1", "--batch-size", "2", "--checkpoint-every", "2", "--quiet", "--json"]
    full = tmp_path / "full"
    code, _, stderr = invoke(*args, "--out", full)
    assert code == 0, stderr

    home = tmp_path / "home"
    out = tmp_path / "killed"
    runs = home / "runs"
    # Killed right after the second psi's first checkpoint: the state file is written at the
    # start and after the first row, then psi 1.0 checkpoints its first 2 samples.
    status = run_to_killpoint([*args, "--out", out], [".sweep-state.json", ".sweep-state.json", "eval-*.pt"], _env(home))
    assert status == -signal.SIGKILL
    state = json.loads((out / ".sweep-state.json").read_text())
    assert len(state["rows"]) == 1 and len(list(runs.glob("eval-*.pt"))) == 1
    assert not (out / "sweep.csv").exists()              # no partial outputs

    # resume in this process, on the killed run's BIGGANCTL_HOME
    monkeypatch.setenv("BIGGANCTL_HOME", str(home))
    loud = [c for c in [*args, "--out", out] if c != "--quiet"]
    code, again_stdout, stderr = invoke(*loud)
    assert code == 0, stderr
    assert "(earlier run)" in stderr and "resuming from" in stderr   # psi 1.0 from its checkpoint
    code, _, stderr = invoke(*loud)
    assert code == 0 and "nothing to evaluate" in stderr

    def numbers(d: Path):
        doc = json.loads((d / "sweep.json").read_text())
        return [{k: v for k, v in r.items() if k != "seconds"} for r in doc["rows"]], doc["psis"]

    assert numbers(out) == numbers(full)
    assert json.loads(again_stdout) == json.loads((out / "sweep.json").read_text())
    for name in ("strip.png", "sweep.png"):
        assert (out / name).read_bytes() == (full / name).read_bytes(), name
    drop = [COLUMNS.index("seconds")]
    a = [[c for i, c in enumerate(line.split(",")) if i not in drop] for line in (out / "sweep.csv").read_text().splitlines()]
    b = [[c for i, c in enumerate(line.split(",")) if i not in drop] for line in (full / "sweep.csv").read_text().splitlines()]
    assert a == b
    assert not list(runs.glob("eval-*.pt"))              # the resumed checkpoint was used up


def test_two_models_overlay_with_one_row_per_model_and_psi(cli, env, tmp_path):
    """biggan-deep-128 (DeepMind) and biggan-128 (paper convention), FID only, N=2."""
    out = tmp_path / "S"
    r = cli("sweep", "--model", "biggan-deep-128", "--model", "biggan-128", "--weights", "random", "--trunc",
            "0.5,1.0", "--n", "2", "--metrics", "fid", "--ref", env["ref"], "--inception-weights", inception_file(),
            "--device", "cpu", "--strip-columns", "1", "--out", out, "--json", "--quiet")
    assert r.exit_code == 0, r.stderr
    rows = read_csv(out / "sweep.csv")
    assert list(rows[0]) == ["model", *COLUMNS]
    assert [(x["model"], float(x["psi"]), x["convention"]) for x in rows] == [
        ("biggan-deep-128", 0.5, "deepmind"), ("biggan-deep-128", 1.0, "deepmind"),
        ("biggan-128", 0.5, "paper"), ("biggan-128", 1.0, "paper")]
    assert all(x["is_mean"] == "" and float(x["fid"]) > 0 for x in rows)
    assert r.json() == json.loads((out / "sweep.json").read_text())
    assert png(out / "strip.png").size == (TILE + 2, 4 * TILE + 2)     # one row per (model, psi)
    png(out / "sweep.png")


def test_precision_recall_sfid_columns_and_panel(env, tmp_path, monkeypatch):
    """`--metrics fid,sfid,pr`: the rows, CSV and JSON carry sfid/precision/recall, and the plot
    gets an sFID panel and one precision/recall-vs-psi panel (evaluation itself faked)."""
    rng = np.random.default_rng(1)
    ref = tmp_path / "Rs.npz"
    st = read_stats(env["ref"])
    write_stats(ref, Stats(st.mu, st.sigma, st.features, st.meta, rng.random(2023), np.eye(2023)))
    seen = []

    def fake(psi, n, protocol):
        seen.append(protocol.metrics)
        return {"trunc_convention": "deepmind", "fid": 10 * psi, "is_mean": None, "is_std": None, "kid_mean": None,
                "kid_std": None, "sfid": 5 * psi, "precision": 1 - psi / 2, "recall": psi / 2, "n": n,
                "seconds": 0.0}

    fake_rows(monkeypatch, fake)
    out = tmp_path / "S"
    code, stdout, stderr = invoke("sweep", *common_args(ref), "--trunc", "0.5,1.0", "--n", 4, "--metrics", "fid,sfid,pr",
                                   "--strip-columns", 0, "--out", out, "--json", "--quiet")
    assert code == 0, stderr
    assert seen == [("fid", "sfid", "precision", "recall")] * 2
    rows = json.loads(stdout)["rows"]
    assert [(r["sfid"], r["precision"], r["recall"]) for r in rows] == [(2.5, 0.75, 0.25), (5.0, 0.5, 0.5)]
    csv_rows = read_csv(out / "sweep.csv")
    assert list(csv_rows[0]) == COLUMNS and [float(r["precision"]) for r in csv_rows] == [0.75, 0.5]
    assert csv_rows[0]["is_mean"] == "" and float(csv_rows[1]["sfid"]) == 5.0
    assert png(out / "sweep.png").size[0] == 3 * 460           # FID, sFID, precision/recall vs psi


def test_progress_takes_every_public_shape():
    """One ``progress=`` for the sweep as for every operation: a reporter hears each row's
    tasks labelled with the row (and the downloads as they are), ``fn(done, total)`` every
    batch, and the sweep's own ``fn(model, psi, done, total)`` the row as well."""
    import contextlib

    from bigganctl.api.sweep import _progress
    from bigganctl.progress import reporter, task

    heard = []

    @reporter
    @contextlib.contextmanager
    def rec(label, *, total, initial=0, unit="it"):
        yield lambda done: heard.append((label, done, total, unit))

    def run(progress):
        rows, loading = _progress(progress)
        with task(rows("biggan-deep-128", 0.5), "eval fid", total=10, unit="img") as step:
            step(4)
        return loading

    assert run(rec) is rec and heard == [("biggan-deep-128 psi=0.5: eval fid", 4, 10, "img")]
    calls = []
    assert run(lambda done, total: calls.append((done, total))) is not None
    run(lambda model, psi, done, total: calls.append((model, psi, done, total)))
    assert calls == [(4, 10), ("biggan-deep-128", 0.5, 4, 10)]
    assert run(False) is None
