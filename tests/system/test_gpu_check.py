"""benchmarks/gpu_check.py: its guard, tables and JSON (fast), and the CPU rehearsal of every
section (slow): the first GPU run gets one try, so its code paths run here first."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def gc():
    spec = importlib.util.spec_from_file_location("gpu_check_under_test", ROOT / "benchmarks" / "gpu_check.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_tables_take_rows_with_different_keys(gc, tmp_path, capsys):
    """The crash of the first version: columns from the first row, KeyError on the next."""
    check = gc.Check(tmp_path, 60, cpu=True)
    check.section("t", lambda c: c.table("mixed", [{"res": 128, "fp32_compiled": 1.5}, {"res": 512, "fp32_eager": 2.0}]),
                  10)
    out = capsys.readouterr().out
    assert "res | fp32_compiled | fp32_eager" in out and "512 | - | 2" in out
    doc = json.loads((tmp_path / "gpu_check.json").read_text())
    assert doc["sections"]["t"]["status"] == "ok"
    assert doc["sections"]["t"]["tables"]["mixed"][1] == {"res": 512, "fp32_eager": 2.0}


def test_a_failing_or_slow_section_prints_one_line_and_the_run_goes_on(gc, tmp_path, capsys):
    check = gc.Check(tmp_path, 60, cpu=True)

    def boom(c):
        c.value("before", float("nan"))
        raise RuntimeError("CUDA error: an illegal memory access\nsecond line")

    check.section("boom", boom, 10)
    t0 = time.monotonic()
    check.section("slow", lambda c: time.sleep(30), 1.0)
    assert time.monotonic() - t0 < 10                          # a hard limit, not a start gate
    check.section("after", lambda c: c.value("x", 1), 10)
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.startswith("!!")]
    assert lines == ["!! boom: FAILED after 0.0 s: RuntimeError: CUDA error: an illegal memory access",
                     lines[1]] and lines[1].startswith("!! slow: TIMEOUT after 1.")
    doc = json.loads((tmp_path / "gpu_check.json").read_text())      # rewritten after each section
    assert [doc["sections"][k]["status"] for k in ("boom", "slow", "after")] == ["failed", "timeout", "ok"]
    assert doc["sections"]["boom"]["values"]["before"] is None      # NaN written as null
    assert "illegal memory access" in (tmp_path / "gpu_check_errors.log").read_text()


def test_sections_are_skipped_when_the_budget_is_spent(gc, tmp_path):
    check = gc.Check(tmp_path, 0.0, cpu=True)
    ran = []
    check.section("late", lambda c: ran.append(1), 10, min_s=5)
    assert not ran and check.doc["sections"]["late"]["status"] == "skipped"


@pytest.mark.slow
def test_cpu_rehearsal_runs_every_section(gc, tmp_path):
    """``gpu_check.py --cpu``: tiny models, small N, every section's code path (about 4 min
    on a busy 2-core machine). Any section not ok fails the test."""
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--cpu", "--out", str(out),
                        "--budget", "1500", "--limit-scale", "10"], capture_output=True, text=True, timeout=1700)
    doc = json.loads((out / "gpu_check.json").read_text())
    status = {k: v["status"] for k, v in doc["sections"].items()}
    errors = (out / "gpu_check_errors.log").read_text() if (out / "gpu_check_errors.log").exists() else ""
    assert r.returncode == 0 and set(status.values()) == {"ok"}, (status, r.stdout[-3000:], errors[-3000:])
    assert list(status) == [name for name, _, _ in gc.SECTIONS]
    s = doc["sections"]
    assert s["layout"]["values"]["loader_cache_untouched"] is True
    oom = s["oom"]["tables"]["forced out-of-memory: back-off vs an uncapped run"][0]
    assert oom["images_max_levels"] == 0 and oom["features_rows_after"] == 1 and oom["features_max_rel_diff"] == 0
    for name in ("compiled", "cudagraphs"):
        assert s[name]["values"]["counters"]["recompile_limit_hits"] == 0
        row = next(iter(s[name]["tables"].values()))[0]
        assert row["consecutive_batches_distinct"] and row["batches"] == "[2, 2, 1]"   # a padded partial batch
    assert next(iter(s["cli"]["tables"].values()))[0]["exit_code"] == 0
    assert next(iter(s["autotune"]["tables"].values()))[0]["mode"] == "max-autotune"
    assert (out / "autotune.log").exists()
