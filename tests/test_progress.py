"""``progress=``: one argument shape for every public operation, read once
(``as_reporter``): True draws tqdm bars, a reporter is used as it is, ``fn(done, total)`` is
called after every step, False/None is silent; ``labelled`` prefixes task labels."""

from __future__ import annotations

import contextlib
import io

import pytest

from bigganctl.progress import as_reporter, from_callback, is_reporter, labelled, reporter, task


def _recorder(heard: list):
    @reporter
    @contextlib.contextmanager
    def rec(label, *, total, initial=0, unit="it"):
        heard.append(("open", label, total, initial, unit))
        yield lambda done: heard.append(("step", label, done))

    return rec


def test_a_reporter_is_used_as_it_is_and_hears_every_step():
    heard: list = []
    rec = _recorder(heard)
    assert as_reporter(rec) is rec
    with task(as_reporter(rec), "eval fid", total=10, initial=2, unit="img") as step:
        step(5)
        step(10)
    assert heard == [("open", "eval fid", 10, 2, "img"), ("step", "eval fid", 5), ("step", "eval fid", 10)]


def test_a_callback_hears_done_and_total():
    calls: list = []
    shown = as_reporter(lambda done, total: calls.append((done, total)))
    assert is_reporter(shown)
    with task(shown, "sampling", total=8) as step:
        step(3)
        step(8)
    assert calls == [(3, 8), (8, 8)]


def test_an_unmarked_reporter_is_told_from_a_callback_by_its_keyword_only_total():
    def unmarked(label, *, total, initial=0, unit="it"):
        return contextlib.nullcontext(lambda done: None)

    assert is_reporter(unmarked) and as_reporter(unmarked) is unmarked
    assert not is_reporter(lambda done, total: None)


@pytest.mark.parametrize("off", [False, None])
def test_false_and_none_are_silent(off):
    assert as_reporter(off) is None
    with task(as_reporter(off), "anything", total=3) as step:
        assert step(1) is None


def test_true_draws_tqdm_bars_on_stderr(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    with task(as_reporter(True), "weights.bin", total=2048, unit="B") as step:
        step(1024)
        step(2048)
    text = err.getvalue()
    assert "weights.bin" in text and "2.00k" in text          # bytes scaled by 1024


def test_labelled_prefixes_every_task_and_keeps_silence_silent():
    heard: list = []
    row = labelled(_recorder(heard), "biggan-deep-128 psi=0.5")
    with task(row, "eval fid/is", total=4) as step:
        step(4)
    assert heard[0][1] == "biggan-deep-128 psi=0.5: eval fid/is" and heard[1] == (
        "step", "biggan-deep-128 psi=0.5: eval fid/is", 4)
    assert labelled(None, "x") is None
    calls: list = []
    with task(labelled(from_callback(lambda d, t: calls.append((d, t))), "x"), "y", total=2) as step:
        step(1)
    assert calls == [(1, 2)]
