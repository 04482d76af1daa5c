"""Every command in the docs runs in the tests.

The ``bigganctl`` lines of the fenced shell blocks of README.md and docs/*.md
(:mod:`_doc_commands`) run against stand-ins (:mod:`_doc_stand_ins`): a BIGGANCTL_HOME with
random weights under the registered names, small ADM reference batches, random Inception
weights, and the input files the docs invent; sample counts lowered. A command marked
``parse-only`` in the docs is checked up to argument parsing (docs/development.md).

Fast tier: every command is parsed, and the cheap ones (no generator, no Inception) run.
Slow tier: every other command runs for real.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # the tests/_*.py helpers

from _doc_commands import DocCommand, DocError, collect, collect_all, lowered, parse_check  # noqa: E402
from _doc_stand_ins import StandIns  # noqa: E402

COMMANDS = collect_all()


def _id(cmd: DocCommand) -> str:
    return cmd.source


def _cheap(cmd: DocCommand) -> bool:
    """Runs in about a second: no generator, no Inception, no full-size weights written."""
    return cmd.argv[:1] in (("classes",), ("compare",)) or cmd.argv[:2] in (
        ("models", "list"), ("models", "info"), ("stats", "list"), ("stats", "pull"), ("stats", "info"))


def _runnable(cheap: bool) -> list:
    return [pytest.param(c, id=_id(c))
            for c in COMMANDS if c.parse_only is None and _cheap(c) == cheap]


@pytest.fixture(scope="session")
def stand_ins(tmp_path_factory) -> StandIns:
    return StandIns(tmp_path_factory.mktemp("doc-stand-ins"))


def run_documented(cmd: DocCommand, stand_ins: StandIns, monkeypatch):
    """Run ``cmd`` in its block's folder against the stand-ins; the CliRunner result."""
    from typer.testing import CliRunner

    from bigganctl.cli.app import app

    stand_ins.apply(monkeypatch)                     # $HOME first: ~ expands into the sandbox
    n_flag = "-n" if cmd.launcher is not None else "--n"
    argv = [os.path.expanduser(os.path.expandvars(t)) for t in lowered(cmd.argv, n_flag)]
    cwd = stand_ins.workdir(cmd.block)
    stand_ins.prepare(argv, cwd)
    stand_ins.apply(monkeypatch)                     # pin what prepare wrote
    for k, v in cmd.env:
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(cwd)
    return CliRunner().invoke(app, argv, catch_exceptions=False)


def _check_run(cmd: DocCommand, stand_ins: StandIns, monkeypatch) -> None:
    r = run_documented(cmd, stand_ins, monkeypatch)
    assert r.exit_code == cmd.exit_code, (
        f"{cmd.source}: `{cmd.text}` exited {r.exit_code} (expected {cmd.exit_code}):\n{r.stderr[-2000:]}")


# ----------------------------------------------------------------------------- the docs

def test_the_docs_have_commands():
    assert len(COMMANDS) >= 40
    assert {c.source.split(":")[0] for c in COMMANDS} >= {
        "README.md", "docs/evaluation.md", "docs/sampling.md", "docs/interp.md", "docs/models.md", "docs/sweep.md"}


@pytest.mark.parametrize("cmd", [pytest.param(c, id=_id(c)) for c in COMMANDS])
def test_documented_command_parses(cmd: DocCommand):
    code, msg = parse_check(cmd)
    assert code == 0, f"{cmd.source}: `{cmd.text}` does not parse:\n{msg}"


@pytest.mark.parametrize("cmd", _runnable(cheap=True))
def test_documented_command_runs_cheap(cmd: DocCommand, stand_ins, monkeypatch):
    _check_run(cmd, stand_ins, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("cmd", _runnable(cheap=False))
def test_documented_command_runs(cmd: DocCommand, stand_ins, monkeypatch):
    _check_run(cmd, stand_ins, monkeypatch)


# ----------------------------------------------------------------------------- the harness

BROKEN = """
Some prose.

```bash
bigganctl models list                     # fine
bigganctl sample --class 207 --nn 4 --out x.png
```
"""


def test_a_broken_example_fails():
    """An unknown option in a new doc example fails the parse check."""
    good, bad = collect(BROKEN, "docs/new.md")
    assert good.argv == ("models", "list") and bad.source == "docs/new.md:6"
    assert parse_check(good)[0] == 0
    code, msg = parse_check(bad)
    assert code == 2 and "--nn" in msg


def test_a_missing_file_fails_the_run(stand_ins, monkeypatch):
    """A command that parses but fails when run (a reference file nobody made, that the
    harness cannot invent: a folder given as --ref) fails the run check."""
    text = "```sh\nbigganctl stats info no_such_stats_dir/\n```\n"
    (cmd,) = collect(text, "docs/new.md")
    (stand_ins.workdir(cmd.block) / "no_such_stats_dir").mkdir(exist_ok=True)
    assert parse_check(cmd)[0] == 0
    r = run_documented(cmd, stand_ins, monkeypatch)
    assert r.exit_code == 2 and "folder" in r.stderr


def test_torchrun_with_ambiguous_n_fails():
    """torchrun's parser reads ``--n`` as an abbreviation of its own options."""
    text = "```bash\ntorchrun --nproc_per_node 2 -m bigganctl eval is --n 100 --json > is.json\n```\n"
    (cmd,) = collect(text, "docs/new.md")
    assert cmd.launcher == ("--nproc_per_node", "2", "-m") and cmd.argv[-1] == "--json"
    code, msg = parse_check(cmd)
    assert code == 2 and "ambiguous" in msg


def test_collector_reads_shell_like_a_shell():
    text = """<!-- doc-test: parse-only `bigganctl bench`: needs a GPU -->
```console
$ OMP_NUM_THREADS=1 bigganctl bench --device cuda \\
    --n 4   # time it
output line
$ cd x && python -m bigganctl classes 'golden retriever' | head -3
$ pip install bigganctl
```
"""
    a, b = collect(text, "t.md")
    assert a.argv == ("bench", "--device", "cuda", "--n", "4") and a.env == (("OMP_NUM_THREADS", "1"),)
    assert a.parse_only == "needs a GPU" and a.source == "t.md:3"
    assert b.argv == ("classes", "golden retriever") and b.parse_only is None


@pytest.mark.parametrize("text", [
    "<!-- doc-test: parse-only `bigganctl nothing`: stale -->\n```bash\nbigganctl models list\n```\n",
    "<!-- doc-test: parse-only -->\n```bash\nbigganctl models list\n```\n",
    "<!-- doc-test: exit 3: x -->\nprose between\n```bash\nbigganctl models list\n```\n",
])
def test_markers_cannot_go_stale_or_lose_their_reason(text):
    with pytest.raises(DocError):
        collect(text, "t.md")


def test_lowering():
    assert lowered(("eval", "fid", "--ref", "imagenet-128")) == ["eval", "fid", "--ref", "imagenet-128", "--n", "10"]
    assert lowered(("eval", "is", "--images", "out/")) == ["eval", "is", "--images", "out/"]
    assert lowered(("sample", "-n", "64", "--n", "4")) == ["sample", "-n", "10", "--n", "4"]
    assert lowered(("interp", "-c", "1", "--steps", "24"))[-1] == "3"
    assert lowered(("eval", "all"), "-n")[-2:] == ["-n", "10"]
    assert lowered(("sweep", "--out", "s/"))[-4:] == ["--n", "10", "--trunc", "0.5,1.0"]
