"""Feeding a trainer: which images each step sees, and the DataLoader that reads them.

The data order is a function of (seed, epoch) and the step (``rules.batch_indices``), so a resumed
run reads exactly the batches an uninterrupted one reads. :class:`StepBatches` is the
DataLoader's batch sampler: from a start step on, the indices of this rank's slice of each step's
global batch.
"""
from __future__ import annotations

import sys
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from hdfm_bench.core.config import RunConfig

from .rules import batch_indices


class StepBatches(Sampler):
    """Indices of steps ``start .. cfg.steps − 1``, each the ``shard`` slice of the step's global batch."""

    def __init__(self, cfg: RunConfig, n: int, start: int, shard: slice = slice(None)) -> None:
        self.cfg, self.n, self.start, self.shard = cfg, n, start, shard

    def __len__(self) -> int:
        return max(0, self.cfg.steps - self.start)

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start, self.cfg.steps):
            yield batch_indices(self.cfg, self.n, step)[self.shard].tolist()


def worker_start_method(pin: bool) -> str:
    """How DataLoader workers start: fork (fast) unless the process holds state a fork must not copy,
    CUDA (``pin``: the training device is a GPU) or JAX's threads; then spawn."""
    return "spawn" if pin or "jax" in sys.modules else "fork"


def next_batch(batches):
    """The next batch of a DataLoader iterator; an error in a worker process comes out as that error with
    its own message (torch wraps it in "Caught ... in DataLoader worker process k. Original Traceback")."""
    try:
        return next(batches)
    except Exception as err:
        text = str(err)
        if "Original Traceback" not in text:
            raise
        marker = f"{type(err).__name__}: "  # the worker's own "…Error: message", the traceback's last line
        at = text.rfind(marker)
        message = text[at + len(marker):].strip() if at >= 0 else text.strip().splitlines()[-1]
        try:
            clean = type(err)(message)
        except Exception:
            clean = RuntimeError(message)
        raise clean from None


def batch_loader(dataset: Dataset, batches: StepBatches, workers: int, pin: bool = False) -> DataLoader:
    """A DataLoader over ``batches``: ``workers`` processes decode ahead (2 batches each), pinned
    memory for a GPU; items are stacked into (x, y)."""
    kwargs = {"num_workers": workers, "pin_memory": pin}
    if workers:
        kwargs.update(prefetch_factor=2, persistent_workers=False,
                      multiprocessing_context=torch.multiprocessing.get_context(worker_start_method(pin)))
    return DataLoader(dataset, batch_sampler=batches, **kwargs)


__all__ = ["StepBatches", "batch_loader", "next_batch", "worker_start_method"]
