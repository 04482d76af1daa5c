"""`bigganctl sweep` as a command: bad input exits 2 naming the option with nothing written,
another program's outputs are refused without --overwrite, and the verbatim acceptance
command (slow) writes its CSV, JSON (the same document on stdout with --json) and plots.
Random biggan-deep-128 and a random Inception file on the CPU."""

from __future__ import annotations

import json

import pytest

from _metrics_util import inception_file
from _sweep_util import COLUMNS, TILE, invoke, png, random_ref, read_csv, sweep_env


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    yield from sweep_env(tmp_path_factory)


@pytest.mark.parametrize("extra, option", [
    (["--trunc", "1.0:0.2:0.1"], "--trunc"),            # stop below start
    (["--trunc", "0:1:0.5"], "--trunc"),                # psi 0 on a DeepMind model
    (["--trunc", "0.1:1.0:0"], "--trunc"),              # step 0
    (["--trunc", ""], "--trunc"),                       # empty list
    (["--trunc", "0.5,1.5"], "--trunc"),                # psi > 1 on a DeepMind model
    (["--n", "1"], "--n"),
    (["--metrics", "fid,bogus"], "--metrics"),
    (["--model", "biggan-128", "--weights", "W.pth"], "--weights"),        # one weights file, two models
])
def test_bad_input_exits_2(cli, tmp_path, extra, option):
    ref = random_ref(tmp_path / "R.npz")
    out = tmp_path / "S"
    base = ["sweep", "--model", "biggan-deep-128", "--weights", "random", "--ref", ref,
            "--inception-weights", inception_file(), "--device", "cpu", "--trunc", "0.5", "--n", "10"]
    r = cli(*base, *extra, "--out", out)
    assert r.exit_code == 2, (r.stdout, r.stderr)
    assert option in r.stderr and "Traceback" not in r.stderr and r.stdout == ""
    assert not out.exists()



def test_refuses_foreign_outputs_without_overwrite(cli, tmp_path):
    out = tmp_path / "S"
    out.mkdir()
    (out / "sweep.csv").write_text("someone else's\n")
    r = cli("sweep", "--weights", "random", "--trunc", "0.5", "--n", "10", "--metrics", "is",
            "--inception-weights", inception_file(), "--device", "cpu", "--out", out)
    assert r.exit_code == 2 and "--out" in r.stderr and "--overwrite" in r.stderr
    assert (out / "sweep.csv").read_text() == "someone else's\n"



@pytest.mark.slow
def test_acceptance_command(env, tmp_path):
    """A full-size sweep, verbatim: random biggan-deep-128, psi 0.2:1.0:0.4, N=64."""
    out = tmp_path / "S"
    code, stdout, stderr = invoke("sweep", "--model", "biggan-deep-128", "--weights", "random", "--trunc",
                                   "0.2:1.0:0.4", "--n", "64", "--ref", env["ref"], "--inception-weights",
                                   inception_file(), "--out", out, "--json")
    assert code == 0, stderr
    rows = read_csv(out / "sweep.csv")
    assert [float(r["psi"]) for r in rows] == [0.2, 0.6, 1.0] and list(rows[0]) == COLUMNS
    assert json.loads(stdout) == json.loads((out / "sweep.json").read_text())
    png(out / "sweep.png")
    assert png(out / "strip.png").size[1] == 3 * TILE + 2
