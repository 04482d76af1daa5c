"""`bigganctl compare`: verdicts and exit codes, tolerances, protocol refusal, every input
kind, noise, summaries (the schemas: tests/system/test_schemas.py). Documents are the
committed baseline of examples/ci (real `eval` / `bench` output on random weights) and
variations of it, so no model runs here."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from _schemas import BASELINE, baseline_doc as _doc


def _write(path: Path, doc: dict) -> Path:
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture
def ev(tmp_path):
    """(baseline path, a function writing a changed copy of it)."""
    base = _write(tmp_path / "base.json", _doc("eval"))

    def changed(name: str = "cur.json", **kv) -> Path:
        doc = _doc("eval")
        doc.update(kv)
        return _write(tmp_path / name, doc)

    return base, changed


def test_same_protocol_within_tolerance_exits_0(cli, ev):
    base, changed = ev
    fid = _doc("eval")["fid"]
    r = cli("compare", base, changed(fid=fid * 1.04))           # +4 % < the default +5 %
    assert r.exit_code == 0, r.stderr
    assert "fid" in r.stdout and "+4.0%" in r.stdout and "no regression" in r.stdout


def test_beyond_tolerance_exits_3_with_the_table(cli, ev):
    base, changed = ev
    fid = _doc("eval")["fid"]
    r = cli("compare", base, changed(fid=fid * 1.06), "--json")
    assert r.exit_code == 3
    assert "regression against" in r.stderr and "fid" in r.stderr
    rows = {x["metric"]: x for x in r.json()["rows"]}
    assert rows["fid"]["verdict"] == "regressed" and rows["fid"]["change_rel"] == pytest.approx(0.06)
    assert rows["fid"]["baseline"] == fid and rows["fid"]["tolerance"] == "+5%"
    assert rows["seconds"]["verdict"] == "info"                 # timings are shown, not judged
    assert r.json()["verdict"] == "regressed" and r.json()["regressions"] == 1
    # a looser tolerance, relative or absolute, lets it pass
    assert cli("compare", base, changed(fid=fid * 1.06), "--tol", "fid=7%").exit_code == 0
    assert cli("compare", base, changed(fid=fid * 1.06), "--tol", f"fid=+{fid * 0.07:.6f}").exit_code == 0
    # lower FID is better: a drop is an improvement, never a regression
    r = cli("compare", base, changed(fid=fid * 0.5), "--json")
    assert r.exit_code == 0 and {x["metric"]: x for x in r.json()["rows"]}["fid"]["verdict"] == "improved"


def test_higher_is_better_metrics(cli, ev):
    base, changed = ev
    is_mean = _doc("eval")["is_mean"]
    assert cli("compare", base, changed(is_mean=is_mean * 0.9)).exit_code == 3       # IS -10 % < -5 %
    assert cli("compare", base, changed(is_mean=is_mean * 1.5)).exit_code == 0
    assert cli("compare", base, changed(is_mean=is_mean * 0.9), "--tol", "is=-20%").exit_code == 0


@pytest.mark.parametrize("field,value", [
    ("n", 20), ("ref", "imagenet-128"), ("extractor_id", "inception-v3-compat:sha256=0000"), ("trunc", 0.5),
    ("classes", "random"), ("resolution", 256), ("metric_version", 99), ("kid_subset_size", 1000),
])
def test_different_protocols_exit_2_naming_the_field(cli, ev, field, value):
    base, changed = ev
    r = cli("compare", base, changed(**{field: value}))
    assert r.exit_code == 2
    assert f"the protocols differ ({field}: baseline" in r.stderr and "--force" in r.stderr
    assert r.stdout == ""
    forced = cli("compare", base, changed(**{field: value}), "--force", "--json")
    assert forced.exit_code == 0, forced.stderr
    assert forced.json()["protocol"]["forced"] is True and "protocols differ" in forced.stderr
    assert forced.json()["protocol"]["differences"][0]["field"] == field


def test_generator_weights_may_differ_and_both_hashes_are_shown(cli, ev):
    base, changed = ev
    r = cli("compare", base, changed(weights="ab" * 32, model="my-checkpoint", seed=7))
    assert r.exit_code == 0, r.stderr
    assert f"weights: baseline random  current {'ab' * 32}" in r.stdout
    assert "seed: baseline 0  current 7" in r.stdout


def test_the_reference_is_compared_by_name_not_folder(cli, ev):
    base, changed = ev
    ref = _doc("eval")["ref"]
    assert cli("compare", base, changed(ref=f"/elsewhere/on/a/runner/{ref}")).exit_code == 0


def test_noise_from_the_runs_and_from_the_command_line(cli, ev):
    base, changed = ev
    d = _doc("eval")
    cur = changed(is_mean=d["is_mean"] + 0.01, is_std=3 * d["is_std"] or 0.01)
    rows = {x["metric"]: x for x in cli("compare", base, cur, "--json").json()["rows"]}
    sigma = ((d["is_std"] ** 2 + (3 * d["is_std"] or 0.01) ** 2) / 2) ** 0.5
    assert rows["is_mean"]["noise"] == pytest.approx(sigma) and rows["is_mean"]["noise_source"] == "run std"
    assert rows["is_mean"]["sigmas"] == pytest.approx(0.01 / sigma, rel=1e-6)
    assert rows["fid"]["sigmas"] is None                       # no spread of FID in an eval document
    r = cli("compare", base, changed(fid=d["fid"] + 0.8), "--noise", "fid=0.4", "--tol", "fid=off", "--json")
    row = {x["metric"]: x for x in r.json()["rows"]}["fid"]
    assert row["sigmas"] == pytest.approx(2.0) and row["noise_source"] == "--noise" and row["verdict"] == "info"


def test_bench_throughput_and_machine(cli, tmp_path):
    doc = _doc("bench")
    base = _write(tmp_path / "b.json", doc)
    slow = copy.deepcopy(doc)
    slow["runs"]["eager"]["images_per_s"] *= 0.8
    r = cli("compare", base, _write(tmp_path / "slow.json", slow))
    assert r.exit_code == 3 and "eager images_per_s" in r.stderr
    assert cli("compare", base, tmp_path / "slow.json", "--tol", "images_per_s=-25%").exit_code == 0
    other = copy.deepcopy(doc)
    other["system"]["isa"] = "AVX2"
    r = cli("compare", base, _write(tmp_path / "other.json", other))
    assert r.exit_code == 2 and "system.isa: baseline" in r.stderr


def _sweep_doc(fids: list[float], psis=(0.5, 1.0)) -> dict:
    rows = [{"psi": p, "convention": "deepmind", "fid": f, "is_mean": 2.0, "is_std": 0.1, "kid_mean": None,
             "kid_std": None, "n": 10, "seconds": 1.0} for p, f in zip(psis, fids)]
    return {"kind": "bigganctl.sweep", "psis": list(psis), "rows": rows,
            "models": [{"model": "biggan-deep-128", "weights": "random", "convention": "deepmind",
                        "resolution": 128}],
            "settings": {"n": 10, "seed": 0, "seeds": "0-9", "classes": "balanced", "metrics": ["fid", "is"],
                         "ref": "R.npz", "extractor_id": "x", "inception_weights_sha256": "y", "dtype": "fp32",
                         "device": "cpu", "is_splits": 10, "strip_columns": 0},
            "files": {"csv": "sweep.csv", "json": "sweep.json", "plot": "sweep.png", "manifest": "manifest.json"},
            "version": "0.1.0", "metric_version": 1}


def test_sweep_json_folder_and_csv(cli, tmp_path):
    from bigganctl.media.plot import write_csv

    (tmp_path / "old").mkdir()
    _write(tmp_path / "old" / "sweep.json", _sweep_doc([10.0, 20.0]))
    new = _sweep_doc([10.0, 25.0])
    (tmp_path / "new").mkdir()
    write_csv(tmp_path / "new" / "sweep.csv", new["rows"], multi=False)
    r = cli("compare", tmp_path / "old", tmp_path / "new" / "sweep.csv", "--json")
    assert r.exit_code == 3
    verdicts = {(x["entry"], x["metric"]): x["verdict"] for x in r.json()["rows"]}
    assert verdicts[("psi=0.5", "fid")] == "ok" and verdicts[("psi=1", "fid")] == "regressed"
    _write(tmp_path / "grid.json", _sweep_doc([10.0, 20.0], psis=(0.4, 1.0)))
    r = cli("compare", tmp_path / "old", tmp_path / "grid.json")
    assert r.exit_code == 2 and "psi: baseline" in r.stderr


def test_stats_info_documents(cli, tmp_path):
    info = {"path": "R.npz", "source": "R.npz", "count": 40, "extractor_id": "x", "resolution": 128, "dim": 2048,
            "has_features": True, "feature_count": 40, "trace_sigma": 0.017, "mu_norm": 9.27}
    a = _write(tmp_path / "a.json", info)
    b = _write(tmp_path / "b.json", {**info, "mu_norm": 9.5})
    r = cli("compare", a, b, "--json")
    assert r.exit_code == 0 and {x["metric"]: x["verdict"] for x in r.json()["rows"]}["mu_norm"] == "info"
    assert cli("compare", a, b, "--tol", "mu_norm=1e-6").exit_code == 3        # two-sided for unknown metrics


def test_new_metrics_are_compared_generically(cli, ev):
    base, changed = ev
    doc = _doc("eval")
    doc.update(sfid=5.0, precision=0.7, recall=0.6)
    b = _write(base.parent / "b2.json", doc)
    worse = changed("c2.json", sfid=5.5, precision=0.65)          # no recall in the current run
    r = cli("compare", b, worse, "--json")
    assert r.exit_code == 3, r.stderr
    v = {x["metric"]: x["verdict"] for x in r.json()["rows"]}
    assert v["sfid"] == "regressed" and v["precision"] == "regressed"
    assert r.json()["only_baseline"] == ["recall"]


@pytest.mark.parametrize("args,needle", [
    (("--tol", "fid"), "METRIC=VALUE"), (("--tol", "fid=abc%"), "METRIC=VALUE"),
    (("--noise", "fid=-1"), "STD > 0"),
])
def test_bad_options_exit_2(cli, ev, args, needle):
    base, changed = ev
    r = cli("compare", base, changed(), *args)
    assert r.exit_code == 2 and needle in r.stderr and "Traceback" not in r.stderr


def test_bad_files_exit_2(cli, tmp_path, ev):
    base, _ = ev
    assert cli("compare", base, tmp_path / "missing.json").exit_code == 2
    (tmp_path / "x.json").write_text('{"hello": 1}')
    r = cli("compare", base, tmp_path / "x.json")
    assert r.exit_code == 2 and "not the --json output of eval, sweep, bench or stats info" in r.stderr
    r = cli("compare", base, BASELINE / "bench.json")
    assert r.exit_code == 2 and "cannot compare a eval result" in r.stderr


def test_summary_appends_markdown_sections(cli, ev, tmp_path):
    base, changed = ev
    summary = tmp_path / "summary.md"
    cli("compare", base, changed(), "--summary", summary)
    cli("compare", base, changed(fid=_doc("eval")["fid"] * 2), "--summary", summary)
    text = summary.read_text()
    assert text.count("### bigganctl compare: eval") == 2
    assert "✅ no regression" in text and "❌ **regression**: fid" in text
    assert "| metric | baseline | current | change | tolerance | Δ/noise | verdict |" in text
    assert "n `10`" in text and "ref `" in text                       # the protocol's key fields


def test_sweep_summary_links_the_plot(tmp_path):
    from bigganctl.summary import sweep_section

    doc = _sweep_doc([10.0, 20.0])
    assert "Plot:" not in sweep_section(doc, tmp_path, "bigganctl sweep")
    (tmp_path / "sweep.png").write_bytes(b"png")
    text = sweep_section(doc, tmp_path, "bigganctl sweep")
    assert f"Plot: [sweep.png]({tmp_path / 'sweep.png'})" in text and "| 1 | 20.0000 |" in text


# ----------------------------------------------------------------------------- schemas


def test_a_refusal_is_in_the_summary_too(cli, ev, tmp_path):
    base, changed = ev
    summary = tmp_path / "s.md"
    assert cli("compare", base, changed(n=20), "--summary", summary).exit_code == 2
    text = summary.read_text()
    assert "⛔ not compared: the protocols differ" in text and "| n | `10` | `20` |" in text
