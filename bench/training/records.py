"""The run record (``run.json``) a trainer keeps: the budget, the start / end of each invocation, a
failure with its last line, and the ownership of the run directory (lock, stale temporaries)."""
from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hdfm_bench.core import plugins
from hdfm_bench.core.config import RunConfig
from hdfm_bench.core.io import stale_temporaries
from hdfm_bench.core.messages import last_line
from hdfm_bench.core.rundir import RECORD_FILE, checkpoint_path, read_record, record_path, record_problem, update_record
from hdfm_bench.core.runlock import RunLocked, run_lock
from hdfm_bench.core.signals import Preempted

from .checkpoint import CheckpointError
from .rules import Interrupted, TrainingFailed


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
    extra = {"plugins": [plugins.record(p) for p in cfg.plugins]} if cfg.plugins else {}
    record(run_dir, cfg, status="running" if start < cfg.steps else prev.get("status", "running"),
           budget={**prev.get("budget", {}), **budget}, objective=objective.describe(), starts=starts, **extra)


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
            raise CheckpointError(f"{problem}; the checkpoint is untouched — move the record aside to train on "
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


__all__ = ["budget", "record", "record_start", "record_done", "non_finite_failure", "owned_run"]
