"""CPU threads: every process uses the cores it may use, never more.

Two processes that each take every core oversubscribe them (OpenMP threads busy-wait: a training
step measured at 0.35 s took 5–8 s beside a second process). So a process sets torch's intra-op
thread count once, from, in order: an explicit ``--threads`` / ``$HDFM_BENCH_THREADS``; the CPUs
Slurm gave the task (``$SLURM_CPUS_PER_TASK``); else the cores this process may run on. Jobs of
the local executor get the cores divided by the number of jobs it runs at once.
"""
from __future__ import annotations

import os

THREADS_ENV = "HDFM_BENCH_THREADS"


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, which containers and cgroups narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _positive(value: str, where: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"{where} must be a positive integer, got {value!r}") from None
    if n < 1:
        raise ValueError(f"{where} must be a positive integer, got {value!r}")
    return n


def default_threads() -> int:
    """``$HDFM_BENCH_THREADS``, else ``$SLURM_CPUS_PER_TASK`` inside a Slurm job, else the available cores."""
    if os.environ.get(THREADS_ENV):
        return _positive(os.environ[THREADS_ENV], f"${THREADS_ENV}")
    if os.environ.get("SLURM_CPUS_PER_TASK") and os.environ.get("SLURM_JOB_ID"):
        return _positive(os.environ["SLURM_CPUS_PER_TASK"], "$SLURM_CPUS_PER_TASK")
    return available_cores()


def share(cores: int, jobs: int) -> int:
    """Threads for each of ``jobs`` processes sharing ``cores`` (at least 1)."""
    return max(1, cores // max(1, jobs))


def set_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads (and ``OMP_NUM_THREADS`` for child processes); returns the count."""
    import torch

    n = default_threads() if threads is None else threads
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"threads must be a positive integer, got {n!r}")
    torch.set_num_threads(n)
    os.environ["OMP_NUM_THREADS"] = str(n)
    return n


__all__ = ["THREADS_ENV", "available_cores", "default_threads", "share", "set_threads"]
