"""Training: one RunConfig → a trained model, checkpoints that resume exactly, a run record.

``rules`` (what every trainer shares), ``build`` (config → task, path, objective, model; loading a
run), ``checkpoint``, ``distributed``, ``tblog`` (TensorBoard event files), and the loops:
``torch_trainer``, ``jax_trainer`` (equinox twins under jit) and ``jax_vmapped`` (many small models
at once, the toy reproduction).
"""
from __future__ import annotations

from collections.abc import Callable

from hdfm_bench.core.config import RunConfig

from .build import build, load_run, with_plugin_origins
from .rules import Interrupted, Preempted, TrainingFailed, TrainResult
from .tblog import TrainLog


def train(cfg: RunConfig, *, progress: bool = True, stop_at: int | None = None,
          on_step: Callable[[int, float], None] | None = None,
          should_stop: Callable[[], bool] | None = None,
          on_checkpoint: Callable[[int, TrainLog], None] | None = None) -> TrainResult:
    """Train (or resume) ``cfg`` with its backend (``cfg.backend``: torch or jax); see
    :func:`torch_trainer.train_torch` for the contract both loops keep."""
    hooks = dict(on_step=on_step, should_stop=should_stop, on_checkpoint=on_checkpoint)
    if cfg.backend == "jax":
        from .jax_trainer import train_jax

        return train_jax(cfg, progress=progress, stop_at=stop_at, **hooks)
    from .torch_trainer import train_torch

    return train_torch(cfg, progress=progress, stop_at=stop_at, **hooks)


__all__ = ["train", "TrainLog", "build", "load_run", "with_plugin_origins", "TrainResult", "TrainingFailed",
           "Interrupted", "Preempted"]
