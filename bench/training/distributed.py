"""Data parallelism helpers: the process group's rank and size, gradient averaging, agreement."""
from __future__ import annotations

import torch


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) of the torch.distributed group, (0, 1) without one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def average_gradients(params: list[torch.nn.Parameter], world: int) -> None:
    """Replace each gradient by its mean over ranks (one flattened all-reduce).

    With equal shards, the mean of the ranks' shard-mean gradients is the gradient of the
    global-batch mean loss, so W processes take the step one process would take on the whole batch.
    """
    import torch.distributed as dist

    grads = [p.grad for p in params if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def mean_over_ranks(value: torch.Tensor) -> torch.Tensor:
    """The mean of ``value`` over every rank (a copy; every rank gets the same result)."""
    import torch.distributed as dist

    value = value.clone()
    dist.all_reduce(value)
    return value / dist.get_world_size()


__all__ = ["rank_and_world", "average_gradients", "mean_over_ranks"]
