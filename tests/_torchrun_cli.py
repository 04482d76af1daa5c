"""Run several ``bigganctl`` commands in the processes of one torchrun job, for the tests.

    python -m torch.distributed.run --nproc_per_node 2 ... tests/_torchrun_cli.py \
        ARGS... [";;" [--fail RANK:module.attr] ARGS...]...

Starting torch and joining a process group costs most of a small torchrun run, so the tests
pay it once: this runner joins the group (gloo), runs each command with the CLI's own entry
point (the commands join the existing group instead of making their own, as they do for
any caller that initialised it), and leaves the group at the end. After each command rank 0
prints ``@@END <exit code>`` on stdout; a command that fails ends the job with its exit code.

``--fail RANK:module.attr`` before a command replaces that function, in that rank only and
from that command on, by one that raises RuntimeError: a process of the job failing in the
middle of the work.
"""

from __future__ import annotations

import importlib
import os
import sys

END = "@@END"


def _inject(spec: str) -> None:
    rank, target = spec.split(":", 1)
    if int(os.environ["RANK"]) != int(rank):
        return
    modname, attr = target.rsplit(".", 1)
    mod = importlib.import_module(modname)

    def fail(*args, **kwargs):
        raise RuntimeError(f"injected failure in {target} on rank {rank}")

    setattr(mod, attr, fail)


def main() -> None:
    commands: list[list[str]] = [[]]
    for a in sys.argv[1:]:
        if a == ";;":
            commands.append([])
        else:
            commands[-1].append(a)

    import torch.distributed as dist

    from bigganctl.cli.app import main as bigganctl

    dist.init_process_group(backend="gloo")
    try:
        for args in commands:
            if args[:1] == ["--fail"]:
                _inject(args[1])
                args = args[2:]
            try:
                bigganctl(args)
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            if int(os.environ["RANK"]) == 0:
                print(f"{END} {code}", flush=True)
            if code != 0:
                sys.exit(code)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
