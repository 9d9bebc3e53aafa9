"""What a running training shows of itself in TensorBoard beyond its scalars: a sample grid at each
kept checkpoint (``train(..., on_checkpoint=grid_hook(run_dir))``; the trainers call it on rank 0
only, at each ``keep_every`` checkpoint and the final one, never at one written to stop).

The grid is drawn from the checkpoint just written, with the run's default sampling settings
(:class:`~.settings.SamplingSettings`: the method's own sampler and steps, no guidance, the raw
weights), image seeds 0…15, so grids at successive checkpoints show the same draws.
"""
from __future__ import annotations

from pathlib import Path

import torch

from hdfm_bench.training import TrainLog

from .generate import generate
from .settings import SamplingSettings

#: images in a checkpoint's grid (4 × 4)
GRID_IMAGES = 16


def checkpoint_grid(run_dir: str | Path, step: int, log: TrainLog) -> None:
    """Log a grid of ``GRID_IMAGES`` samples from the checkpoint of ``step`` as ``samples`` at ``step``.

    Building the model and drawing the prior use their own generators; the global torch RNG (which
    dropout in training draws from) is restored afterwards, so a run's numbers do not depend on
    whether its grids were drawn (``RunConfig.tb``)."""
    if not log:
        return
    from torchvision.utils import make_grid

    with torch.random.fork_rng(devices=[]):
        out = generate(run_dir, SamplingSettings(n=GRID_IMAGES, seed=0, checkpoint_step=step))
    log.image("samples", step, make_grid((out["samples"] + 1) / 2, nrow=4, padding=1, pad_value=1.0))


def grid_hook(run_dir: str | Path):
    """``on_checkpoint`` for :func:`hdfm_bench.training.train`: :func:`checkpoint_grid` of ``run_dir``."""
    return lambda step, log: checkpoint_grid(run_dir, step, log)


__all__ = ["checkpoint_grid", "grid_hook", "GRID_IMAGES"]
