"""torchrun: the one place for rank, world size, process-group set-up and teardown, shards
and the few collectives the commands need.

Under ``torchrun`` (``RANK`` / ``WORLD_SIZE`` in the environment) every heavy command
(``sample``, ``eval``, ``sweep``, ``stats compute``) takes samples
``rank * n // world .. (rank + 1) * n // world - 1`` (:func:`shard`), and rank 0 gathers or
all-reduces the results, writes every file and prints. Without torchrun everything here is
a no-op for a world of one.

Failure: a process that fails exits non-zero and torchrun stops the others; a collective
that loses its peer raises :class:`~bigganctl.errors.RuntimeFailure` (exit 1) instead of a
backend traceback, and SIGTERM (how torchrun stops the survivors) is turned into
KeyboardInterrupt, so temporary files are removed and evaluation checkpoints saved on the
way out.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from ..errors import BigGANCtlError, RuntimeFailure, UsageError, sigterm_as_interrupt
from .device import resolve_device

T = TypeVar("T")
#: Rows sent per collective when gathering to rank 0: bounds the extra memory of a gather.
GATHER_CHUNK_BYTES = 64 * 2**20


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def distributed_env() -> Dist:
    """Rank and world size from torchrun's environment (``RANK``, ``WORLD_SIZE``)."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return Dist()
    return Dist(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))


def is_main() -> bool:
    """True in rank 0 (and without torchrun): the process that writes files and prints."""
    return distributed_env().rank == 0


def init_distributed(device_spec: str | torch.device) -> tuple[Dist, torch.device]:
    """Join torchrun's process group (nccl on CUDA, gloo on CPU); pick this rank's device.

    A group initialised by the caller (a script that called ``init_process_group``) is
    joined and left to the caller (``owns_group`` False)."""
    d = distributed_env()
    if not d.active:
        return d, resolve_device(device_spec)
    import torch.distributed as dist

    device = _rank_device(device_spec, d)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    owns = False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        owns = True
    return Dist(d.rank, d.world, d.local_rank, owns), device


def _rank_device(device_spec: str | torch.device, d: Dist) -> torch.device:
    """This process's device under torchrun: ``cuda:LOCAL_RANK`` for ``auto``/``cuda``.

    ``cuda:N`` would put every process on GPU N, and more processes than GPUs would share
    some: NCCL then fails with "duplicate GPU". Both are usage errors (exit 2), checked
    before any process group exists."""
    spec = str(device_spec or "auto").strip().lower()
    if spec.startswith("cuda:"):
        raise UsageError(f"{spec} under torchrun would put every process on one GPU; pass cuda (process i "
                         "takes cuda:LOCAL_RANK) and pick the GPUs with CUDA_VISIBLE_DEVICES", param="device")
    if not (torch.cuda.is_available() and spec in ("auto", "cuda")):
        return resolve_device(spec)
    count = torch.cuda.device_count()
    if d.local_rank >= count:
        raise UsageError(f"torchrun started more processes on this machine than it has CUDA devices "
                         f"(local rank {d.local_rank}, {count} GPU(s)); pass --nproc-per-node {count} "
                         "or less", param="device")
    return torch.device("cuda", d.local_rank)


def teardown(d: Dist) -> None:
    if d.owns_group:
        import torch.distributed as dist

        with contextlib.suppress(Exception):
            dist.destroy_process_group()


@contextlib.contextmanager
def session(device_spec: str | torch.device) -> Iterator[tuple[Dist, torch.device]]:
    """``with session(device) as (d, dev):`` the process group for one command (a no-op
    without torchrun), SIGTERM as KeyboardInterrupt while it lasts, teardown at the end."""
    d, dev = init_distributed(device_spec)
    previous = sigterm_as_interrupt() if d.active else None
    try:
        yield d, dev
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        teardown(d)


def shard(n: int, d: Dist) -> tuple[int, int]:
    """This rank's contiguous share ``[lo, hi)`` of ``n`` samples."""
    return d.rank * n // d.world, (d.rank + 1) * n // d.world


def shard_counts(n: int, d: Dist) -> list[int]:
    return [(r + 1) * n // d.world - r * n // d.world for r in range(d.world)]


def comm_device(device: torch.device) -> torch.device:
    import torch.distributed as dist

    return device if dist.get_backend() == "nccl" else torch.device("cpu")


@contextlib.contextmanager
def collective(what: str) -> Iterator[None]:
    """A collective whose peer died becomes a RuntimeFailure naming ``what``."""
    try:
        yield
    except (RuntimeError, ValueError) as e:       # gloo / nccl report a lost peer as RuntimeError
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise RuntimeFailure(f"another process of the job failed during {what} ({first[:160]})") from None


def gather_rows(local: torch.Tensor, n: int, d: Dist, device: torch.device, *, to_all: bool = False,
                what: str = "the gather") -> torch.Tensor | None:
    """Rows ``[lo, hi)`` of every rank (``local``, this rank's :func:`shard` of ``n`` rows)
    concatenated in rank order: the whole ``[n, ...]`` tensor on the CPU of rank 0 (of every
    rank with ``to_all``), None elsewhere. Sent in chunks of about 64 MiB."""
    if not d.active:
        return local
    import torch.distributed as dist

    counts = shard_counts(n, d)
    comm = comm_device(device)
    row_shape, dtype = tuple(local.shape[1:]), local.dtype
    row_bytes = max(1, int(torch.tensor([], dtype=dtype).element_size() * max(1, _numel(row_shape))))
    step = max(1, GATHER_CHUNK_BYTES // (row_bytes * d.world))
    keep = to_all or d.is_main
    out = torch.empty((n, *row_shape), dtype=dtype) if keep else None
    starts = [sum(counts[:r]) for r in range(d.world)]
    with collective(what):
        for c in range(0, max(counts), step):
            m = min(step, max(counts) - c)
            pad = torch.zeros((m, *row_shape), dtype=dtype, device=comm)
            mine = local[c:c + m]
            pad[: mine.shape[0]] = mine.to(comm)
            parts = [torch.empty_like(pad) for _ in range(d.world)] if keep else None
            if to_all:
                dist.all_gather(parts, pad)
            else:
                dist.gather(pad, parts, dst=0)
            if out is not None:
                for r, part in enumerate(parts):
                    k = max(0, min(m, counts[r] - c))
                    out[starts[r] + c:starts[r] + c + k] = part[:k].cpu()
    return out


def _numel(shape: Sequence[int]) -> int:
    k = 1
    for s in shape:
        k *= int(s)
    return k


def broadcast_object(obj: Any, d: Dist, *, what: str = "a broadcast") -> Any:
    """Rank 0's ``obj`` on every rank (picklable objects)."""
    if not d.active:
        return obj
    import torch.distributed as dist

    box = [obj if d.is_main else None]
    with collective(what):
        dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(obj: Any, d: Dist, *, what: str = "a gather") -> list[Any]:
    """Every rank's ``obj`` (picklable), in rank order, on every rank."""
    if not d.active:
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * d.world
    with collective(what):
        dist.all_gather_object(out, obj)
    return out


def main_decides(fn: Callable[[], T], d: Dist, *, what: str) -> T:
    """Run ``fn`` on rank 0 only and give its result to every rank; a domain error raised
    there is raised on every rank (the same message and exit code everywhere)."""
    if not d.active:
        return fn()
    result: tuple[str, Any] = ("ok", None)
    if d.is_main:
        try:
            result = ("ok", fn())
        except BigGANCtlError as e:
            result = ("error", e)
    kind, value = broadcast_object(result, d, what=what)
    if kind == "error":
        raise value
    return value


def all_true(flag: bool, d: Dist, device: torch.device, *, what: str) -> bool:
    """True when ``flag`` is true in every process of the job."""
    if not d.active:
        return flag
    import torch.distributed as dist

    t = torch.tensor([int(flag)], device=comm_device(device))
    with collective(what):
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())
