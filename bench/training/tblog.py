"""TensorBoard event files of a run (``RUN/tb/``), written with the ``tensorboard`` package's writer.

What a trainer logs, at each loss read-back (``log_every``), for every step of the window:
``train/loss``, ``train/lr`` and ``train/grad_norm`` (the global norm before clipping); per window
``train/seconds_per_step`` and ``train/images_per_s`` (compute time only, as ``wall_time_s``); a
``samples`` grid at each kept checkpoint and the final one (``sampling.live``, ``rules.kept``) and
``eval/…`` metrics when ``evaluate`` measures a checkpoint (at that checkpoint's step). Steps count
optimizer updates done, as ``run.json``'s history.

Resume: events are flushed before every checkpoint is written, so everything up to a checkpoint is
on disk when it is; a resumed process opens its writer with ``purge_step = start + 1``, whose
session-start event tells TensorBoard's reader to drop what an earlier process logged after that
checkpoint (a kill between two checkpoints). The curves then hold each step once, as an
uninterrupted run's. Only rank 0 writes; ``RunConfig.tb = False`` writes nothing and changes
nothing else (the field is not part of the run id).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import torch

from hdfm_bench.core.rundir import TB_DIR


class TrainLog:
    """A run's TensorBoard writer, or a no-op when ``enabled`` is false."""

    def __init__(self, run_dir: str | Path, enabled: bool = True, start: int | None = None):
        """``start``: the step a trainer starts from (events it logged after it are dropped); None for
        a writer that only adds (``evaluate``)."""
        self.writer = None
        if not enabled:
            return
        from torch.utils.tensorboard import SummaryWriter  # imports tensorboard: only when used

        # the reader drops earlier events at steps >= purge_step: what a killed process logged after the
        # checkpoint this one starts from (or before any checkpoint, when it starts from scratch)
        purge = None if start is None else start + 1
        self.writer = SummaryWriter(log_dir=str(Path(run_dir) / TB_DIR), purge_step=purge, flush_secs=30)

    def __bool__(self) -> bool:
        return self.writer is not None

    def steps(self, first: int, rows: list[tuple[float, float, float | None]], seconds: float, batch: int) -> None:
        """Steps ``first, first + 1, …``: (loss, lr, grad norm) each; the window took ``seconds`` of compute."""
        if not self.writer or not rows:
            return
        for k, (loss, lr, grad_norm) in enumerate(rows):
            self.writer.add_scalar("train/loss", loss, first + k)
            self.writer.add_scalar("train/lr", lr, first + k)
            if grad_norm is not None and math.isfinite(grad_norm):
                self.writer.add_scalar("train/grad_norm", grad_norm, first + k)
        last = first + len(rows) - 1
        if seconds > 0:
            self.writer.add_scalar("train/seconds_per_step", seconds / len(rows), last)
            self.writer.add_scalar("train/images_per_s", batch * len(rows) / seconds, last)

    def image(self, tag: str, step: int, grid: torch.Tensor) -> None:
        """A (C, H, W) image in [0, 1] at ``step``."""
        if self.writer:
            self.writer.add_image(tag, grid.clamp(0, 1), step, dataformats="CHW")

    def scalars(self, prefix: str, step: int, values: Mapping[str, float]) -> None:
        """``prefix/name`` for each finite value, at ``step``."""
        if self.writer:
            for name, v in values.items():
                if v is not None and math.isfinite(float(v)):
                    self.writer.add_scalar(f"{prefix}/{name}", float(v), step)

    def flush(self) -> None:
        if self.writer:
            self.writer.flush()

    def close(self) -> None:
        if self.writer:
            self.writer.close()
            self.writer = None


__all__ = ["TrainLog"]
