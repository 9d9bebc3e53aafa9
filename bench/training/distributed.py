"""Data parallelism helpers: starting the process group, rank and size, agreement between ranks.

Gradients are averaged by ``torch.nn.parallel.DistributedDataParallel`` (the torch trainer). Every
collective has a timeout (``$HDFM_BENCH_DIST_TIMEOUT`` seconds, default 600): when one process of a
job dies, the others fail with :class:`RankFailure` instead of waiting for ever.
"""
from __future__ import annotations

import datetime
import os

import torch

TIMEOUT_ENV = "HDFM_BENCH_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 600.0


class RankFailure(RuntimeError):
    """A collective failed or timed out: another process of the data-parallel job has died."""


def timeout_s() -> float:
    """The collectives' timeout in seconds (``$HDFM_BENCH_DIST_TIMEOUT``, else 600)."""
    raw = os.environ.get(TIMEOUT_ENV, "")
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT_S
    except ValueError:
        raise ValueError(f"{TIMEOUT_ENV} must be a number of seconds, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{TIMEOUT_ENV} must be > 0, got {raw!r}")
    return value


def start_group(rank: int, world: int, init_method: str = "env://", backend: str | None = None) -> None:
    """``torch.distributed.init_process_group`` with the timeout: nccl on a GPU, gloo on CPUs."""
    import torch.distributed as dist

    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    dist.init_process_group(backend=backend, init_method=init_method, rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=timeout_s()))


def torchrun_world() -> tuple[int, int] | None:
    """(rank, world size) when this process was started by torchrun (``RANK``, ``WORLD_SIZE``,
    ``MASTER_ADDR``/``MASTER_PORT`` in the environment) with more than one process, else None."""
    try:
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    except (KeyError, ValueError):
        return None
    if world <= 1:
        return None
    if not 0 <= rank < world or not os.environ.get("MASTER_ADDR") or not os.environ.get("MASTER_PORT"):
        raise ValueError(f"torchrun's environment is incomplete or inconsistent (RANK {rank}, WORLD_SIZE {world}, "
                         "MASTER_ADDR/MASTER_PORT)")
    return rank, world


def start_torchrun() -> tuple[int, int]:
    """Join torchrun's group (env:// init, gloo on CPUs, nccl with the LOCAL_RANK GPU); (0, 1) without torchrun."""
    found = torchrun_world()
    if found is None:
        return 0, 1
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    start_group(*found)
    return found


def barrier() -> None:
    """Wait for every rank (nothing without a process group)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def end_group() -> None:
    """Leave the process group, if any (after a barrier, so no rank leaves while another still talks)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) of the torch.distributed group, (0, 1) without one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def check_divisible(batch_size: int, world: int) -> None:
    """Each of ``world`` processes takes an equal slice of every global batch."""
    if batch_size % world:
        raise ValueError(f"batch_size {batch_size} is not divisible by the {world} data-parallel processes")


def mean_over_ranks(value: torch.Tensor) -> torch.Tensor:
    """The mean of ``value`` over every rank (a copy; every rank gets the same result)."""
    import torch.distributed as dist

    value = value.clone()
    dist.all_reduce(value)
    return value / dist.get_world_size()


__all__ = ["TIMEOUT_ENV", "RankFailure", "timeout_s", "start_group", "rank_and_world", "check_divisible",
           "mean_over_ranks"]
