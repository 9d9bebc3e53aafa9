"""The rules every trainer shares — the torch loop, the JAX loop and the vmapped toy trainer.

What defines a run beyond its config lives here once: the learning-rate warm-up, the data order,
the EMA warm-up rule and the errors a trainer raises (the run record is :mod:`.records`, the
checkpoint payload :mod:`.checkpoint`). A backend only adds its own arithmetic.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from hdfm_bench.core.config import RunConfig
from hdfm_bench.core.signals import Preempted


class TrainingFailed(RuntimeError):
    """The loss became non-finite (or the step raised); the run is recorded as failed."""


class Interrupted(RuntimeError):
    """Raised by ``stop_at`` to simulate a kill/preemption (tests)."""


@dataclasses.dataclass
class TrainResult:
    run_dir: Path
    model: torch.nn.Module
    emas: dict[float, torch.nn.Module]
    record: dict


# ---- schedules -------------------------------------------------------------------------------------

def lr_at(lr: float, warmup: int, step: Any) -> Any:
    """Learning rate at optimizer step ``step`` (0-based): lr · min(1, (step + 1)/warmup).

    ``step`` may be a Python int or a (traced) JAX array; the result has the same kind."""
    if not warmup:
        return lr
    factor = (step + 1) / warmup
    return lr * (factor.clip(max=1.0) if hasattr(factor, "clip") else min(1.0, factor))


def kept(cfg, step: int) -> bool:
    """Whether the checkpoint of ``step`` is one a run keeps: a ``keep_every`` copy, or the final one.
    What a trainer's ``on_checkpoint`` sees (a sample grid is drawn there): not every periodic
    checkpoint, which may come every few steps, and never one written to stop, which must be quick."""
    return step == cfg.steps or bool(cfg.keep_every and step % cfg.keep_every == 0)


def ema_decay(decay: float, updates: int) -> float:
    """The EMA decay used at update n: min(d, (1 + n)/(10 + n)) (k-diffusion's warm-up), so short
    runs get a useful average early."""
    return min(decay, (1 + updates) / (10 + updates))


def batch_indices(cfg: RunConfig, n: int, step: int) -> torch.Tensor:
    """Indices into the training split for global step ``step``.

    The order of epoch e is a permutation drawn from a generator seeded by (seed, e), so the step
    alone fixes which images a step sees (exact resume). Data smaller than a batch wrap around."""
    per_epoch = max(n // cfg.batch_size, 1)
    epoch, i = divmod(step, per_epoch)
    g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
    perm = torch.randperm(n, generator=g)
    if n < cfg.batch_size:
        return perm[torch.arange(cfg.batch_size) % n]
    return perm[i * cfg.batch_size:(i + 1) * cfg.batch_size]


__all__ = ["TrainingFailed", "Interrupted", "Preempted", "TrainResult", "lr_at", "ema_decay", "batch_indices"]
