"""Run ``bigganctl ARGS`` and freeze it at an observed point, for kill/resume tests.

    python tests/_killpoint.py PATTERN[,PATTERN...] -- ARGS...

Every atomic write in bigganctl ends with ``os.replace(tmp, target)``. This runner wraps
``os.replace``; once targets matching the patterns have been written in that order (a
subsequence: other writes may come between), it prints ``KILLPOINT <target>`` on stderr
and blocks for good. The test reads stderr until that line and then kills the process:
the kill lands at a known point, with no sleep and no poll that could miss it.
"""

from __future__ import annotations

import fnmatch
import os
import runpy
import sys
import threading

MARKER = "KILLPOINT"


def main() -> None:
    patterns = sys.argv[1].split(",")
    assert sys.argv[2] == "--", "usage: _killpoint.py PATTERN[,PATTERN...] -- ARGS..."
    seen = 0
    real_replace = os.replace

    def replace(src, dst, *a, **kw):
        nonlocal seen
        real_replace(src, dst, *a, **kw)
        if seen < len(patterns) and fnmatch.fnmatch(os.path.basename(os.fspath(dst)), patterns[seen]):
            seen += 1
            if seen == len(patterns):
                os.write(2, f"\n{MARKER} {os.fspath(dst)}\n".encode())
                threading.Event().wait()          # frozen here until the test kills us

    os.replace = replace
    threads = os.environ.get("OMP_NUM_THREADS")
    if threads:        # as the test process has: torch caps the variable at the cores it sees
        import torch

        torch.set_num_threads(int(threads))
    if os.environ.get("KILLPOINT_IMAGES"):     # also observe PIL saves (frames, PNG folders)
        from PIL import Image

        real_save = Image.Image.save

        def save(self, fp, *a, **kw):
            nonlocal seen
            real_save(self, fp, *a, **kw)
            if seen < len(patterns) and isinstance(fp, (str, os.PathLike)) and \
                    fnmatch.fnmatch(os.path.basename(os.fspath(fp)), patterns[seen]):
                seen += 1
                if seen == len(patterns):
                    os.write(2, f"\n{MARKER} {os.fspath(fp)}\n".encode())
                    threading.Event().wait()

        Image.Image.save = save
    if os.environ.get("KILLPOINT_TINY_LOADER"):  # the interp tests' tiny stand-in generator
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import bigganctl
        from _interp_tiny import fake_loader_module

        sys.modules["bigganctl.weights.loader"] = bigganctl.weights.loader = fake_loader_module()
    sys.argv = ["bigganctl", *sys.argv[3:]]
    runpy.run_module("bigganctl", run_name="__main__", alter_sys=True)


def run_to_killpoint(args, patterns, env, timeout: float = 300.0) -> int:
    """Start ``bigganctl ARGS`` under this runner with the test process's thread count (so the
    killed run and the run that resumes it split work between threads alike), wait (blocking reads, no polling) until it
    is frozen after writing files matching ``patterns`` in order, SIGKILL it, and return its
    exit status (``-SIGKILL``). Fails if it ends before reaching that point."""
    import signal

    return signal_at_killpoint(args, patterns, env, signal.SIGKILL, timeout)[0]


def signal_at_killpoint(args, patterns, env, sig, timeout: float = 300.0) -> tuple[int, str]:
    """:func:`run_to_killpoint` with the signal ``sig``; returns (exit status, the stderr the
    process wrote after the signal)."""
    import subprocess

    import torch

    env = {**env, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    cmd = [sys.executable, __file__, ",".join(patterns), "--", *map(str, args)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    timer = threading.Timer(timeout, proc.kill)           # a hung run fails the test, not CI
    timer.start()
    tail: list[str] = []
    try:
        for line in proc.stderr:                          # blocks until a line or EOF
            if line.startswith(MARKER):
                proc.send_signal(sig)
                break
            tail = (tail + [line])[-20:]
        else:
            raise AssertionError("the run ended before the kill point:\n" + "".join(tail))
        rest = proc.stderr.read()
        return proc.wait(timeout=60), rest
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()


if __name__ == "__main__":
    main()
