"""The rules every trainer shares — the torch loop, the JAX loop and the vmapped toy trainer.

What defines a run beyond its config lives here once: the learning-rate warm-up, the data order,
the EMA warm-up rule, the budget record, the checkpoint payload, the run record at start / end /
failure, and the errors a trainer raises. A backend only adds its own arithmetic.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from hdfm_bench.core.config import RunConfig
from hdfm_bench.core.io import stale_temporaries
from hdfm_bench.core.rundir import (
    RECORD_FILE,
    checkpoint_path,
    kept_checkpoint_path,
    read_record,
    record_path,
    record_problem,
    update_record,
)
from hdfm_bench.core.runlock import RunLocked, run_lock
from hdfm_bench.core.signals import Preempted
from hdfm_bench.tasks import last_line

from . import checkpoint as ckpt


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


# ---- records -----------------------------------------------------------------------------------------

def budget(cfg: RunConfig, parameters: int, backbone: dict, task: dict, processes: int = 1) -> dict:
    """The budget a run records (what tables compare): images seen, steps, batch, parameters, ..."""
    out = {"images_seen": cfg.steps * cfg.batch_size, "steps": cfg.steps, "batch_size": cfg.batch_size,
           "parameters": parameters, "backbone": backbone, "task": task, "processes": processes}
    if cfg.backend != "torch":
        out["backend"] = cfg.backend
    return out


def record(run_dir: Path, cfg: RunConfig, **fields: Any) -> dict:
    """Merge ``fields`` into the run's ``run.json`` (atomically)."""
    return update_record(run_dir, cfg.run_id(), cfg.to_dict(), **fields)


def record_start(run_dir: Path, cfg: RunConfig, start: int, budget: dict, objective) -> None:
    """run.json at the start of an invocation: status, budget, objective, and where it resumed from."""
    prev = read_record(run_dir)
    starts = list(prev.get("starts", []))
    if start < cfg.steps:
        starts.append(start)  # one entry per invocation that trained: where it resumed from
    record(run_dir, cfg, status="running" if start < cfg.steps else prev.get("status", "running"),
           budget={**prev.get("budget", {}), **budget}, objective=objective.describe(), starts=starts)


def record_done(run_dir: Path, cfg: RunConfig, budget: dict, wall: float, history: list) -> dict:
    return record(run_dir, cfg, status="done", budget={**budget, "wall_time_s": round(wall, 2)},
                  final_loss=history[-1][1] if history else None,
                  loss_first_last=[history[0][1], history[-1][1]] if history else None, history=history)


def non_finite_failure(run_dir: Path, cfg: RunConfig, step: int, last_finite: float,
                       write: bool = True) -> TrainingFailed:
    """Record a non-finite loss at ``step`` as the run's failure (``write``: this process owns the
    record); return the error to raise."""
    if write:
        record(run_dir, cfg, status="failed", failed_step=step, last_finite_loss=last_finite,
               error=f"non-finite loss at step {step}")
    return TrainingFailed(f"non-finite loss at step {step} (last finite loss {last_finite:.4g}); "
                          f"run recorded as failed in {run_dir / RECORD_FILE}")


@contextlib.contextmanager
def owned_run(run_dir: Path, cfg: RunConfig, leader: bool = True) -> Iterator[None]:
    """The trainer's ownership of ``run_dir`` (created here, after the config was validated).

    The leader takes the run lock (core.runlock; a second trainer of the same run refuses), removes the
    temporaries an earlier process killed mid-save left (``.checkpoint.pt.*``, ``.run.json.*``), and
    records any error that ends training (not only a non-finite loss) as ``status = failed`` with its
    last line in ``run.json``; a stop on request (SIGTERM, preemption, Ctrl-C) is not a failure. A folder
    this call created is removed again when training fails before its first checkpoint (e.g. the
    first batch holds an unreadable image), unless the loss became non-finite: a failed start leaves
    no empty run directory."""
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    if not leader:
        yield
        return
    discard = False
    with run_lock(run_dir):
        problem = record_problem(run_dir)
        if problem:  # never silently replaced: it holds the run's history and where each invocation began
            raise ckpt.CheckpointError(f"{problem}; the checkpoint is untouched — move the record aside to train on "
                                       f"(a new one is started from the checkpoint)")
        for tmp in stale_temporaries(checkpoint_path(run_dir)) + stale_temporaries(record_path(run_dir)):
            tmp.unlink(missing_ok=True)
        try:
            yield
        except (Preempted, Interrupted, RunLocked):
            raise
        except Exception as err:
            # a failed start (bad data, a crash before any checkpoint) leaves nothing; a non-finite loss is
            # a finding about the config and keeps its record
            discard = created and not checkpoint_path(run_dir).exists() and not isinstance(err, TrainingFailed)
            if not discard and read_record(run_dir).get("status") != "failed" and record_path(run_dir).exists():
                with contextlib.suppress(OSError):  # e.g. the disk is full: the error itself says so
                    record(run_dir, cfg, status="failed", error=last_line(err))
            raise
        finally:
            if discard:
                shutil.rmtree(run_dir, ignore_errors=True)


# ---- checkpoints -----------------------------------------------------------------------------------

def checkpoint_payload(cfg: RunConfig, step: int, *, model: dict, ema: dict[float, dict], ema_updates: int,
                       optimizer: dict, rng: dict, history: list, wall_time: float) -> dict:
    """What every backend's checkpoint holds (weights under the torch model's parameter names)."""
    out = {"format": ckpt.FORMAT, "run_id": cfg.run_id(), "step": step, "model": model,
           "ema": {repr(d): sd for d, sd in ema.items()}, "ema_updates": ema_updates, "optimizer": optimizer,
           "rng": rng, "history": history, "wall_time": wall_time, "config": json.dumps(cfg.to_dict())}
    if cfg.backend != "torch":
        out["backend"] = cfg.backend
    return out


def keep_checkpoint(run_dir: Path, cfg: RunConfig, step: int) -> None:
    """With ``keep_every``, keep a copy of the checkpoint just written at ``step`` (for FID against
    training steps: ``--checkpoint-step`` samples from it)."""
    if cfg.keep_every and step % cfg.keep_every == 0:
        ckpt.copy(checkpoint_path(run_dir), kept_checkpoint_path(run_dir, step))


def check_not_older(path: Path, step: int) -> None:
    """Never write a checkpoint of ``step`` over a newer one (the record says which step is on disk)."""
    on_disk = int(read_record(path.parent).get("step") or 0)
    if path.exists() and on_disk > step:
        raise ckpt.CheckpointError(f"{path} holds step {on_disk}, newer than this process's step {step}: another "
                                   f"process trained this run; not overwritten")


def load_own_checkpoint(path: Path, cfg: RunConfig) -> dict:
    """The run's checkpoint, refused (CheckpointError) when it belongs to another run or backend."""
    state = ckpt.load(path)
    if state["run_id"] != cfg.run_id():
        raise ckpt.CheckpointError(f"{path} belongs to run {state['run_id']}, not {cfg.run_id()}")
    if state.get("backend", "torch") != cfg.backend:
        raise ckpt.CheckpointError(f"{path} was written by the {state.get('backend', 'torch')} backend, "
                                   f"not {cfg.backend}")
    return state


__all__ = ["TrainingFailed", "Interrupted", "Preempted", "TrainResult", "lr_at", "ema_decay", "batch_indices",
           "budget", "record", "record_start", "record_done", "non_finite_failure", "checkpoint_payload",
           "keep_checkpoint",
           "load_own_checkpoint", "owned_run", "check_not_older"]
