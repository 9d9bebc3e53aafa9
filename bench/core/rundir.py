"""A run directory: the file names inside it and its run record (``run.json``).

``runs/<run id>/`` holds ``checkpoint.pt`` (the latest checkpoint), ``run.json`` (status,
budget, history, where each invocation started), ``samples/`` (what ``hdfm-bench sample``
writes) and ``tb/`` (TensorBoard event files, ``training.tblog``). Every module names these files
through the constants here.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .io import write_text

CHECKPOINT_FILE = "checkpoint.pt"
RECORD_FILE = "run.json"
SAMPLES_DIR = "samples"
#: copies of the checkpoint kept along training (``keep_every``): checkpoints/step-0000300.pt
KEPT_DIR = "checkpoints"
TB_DIR = "tb"  # TensorBoard event files (training.tblog)


def checkpoint_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / CHECKPOINT_FILE


def kept_checkpoint_path(run_dir: str | Path, step: int) -> Path:
    """Where the copy of the checkpoint at ``step`` is kept (``RunConfig.keep_every``)."""
    return Path(run_dir) / KEPT_DIR / f"step-{int(step):07d}.pt"


def kept_steps(run_dir: str | Path) -> list[int]:
    """The steps whose checkpoint copy is kept, ascending."""
    folder = Path(run_dir) / KEPT_DIR
    steps = []
    for f in folder.glob("step-*.pt") if folder.is_dir() else ():
        digits = f.stem.removeprefix("step-")
        if digits.isdigit():
            steps.append(int(digits))
    return sorted(steps)


def record_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / RECORD_FILE


def _load_record(run_dir: str | Path) -> tuple[dict[str, Any], str | None]:
    """(the record, or {}; why an existing record cannot be used, or None)."""
    path = record_path(run_dir)
    try:
        rec = json.loads(path.read_text())
    except FileNotFoundError:
        return {}, None
    except (OSError, ValueError) as err:
        return {}, f"{path} is unreadable ({type(err).__name__}: {' '.join(str(err).split())[:120]})"
    if not isinstance(rec, dict):
        return {}, f"{path} holds a {type(rec).__name__}, not a run record"
    return rec, None


def read_record(run_dir: str | Path) -> dict[str, Any]:
    """The run record as a dict; {} when there is none or it cannot be read."""
    return _load_record(run_dir)[0]


def record_problem(run_dir: str | Path) -> str | None:
    """Why the run record exists but cannot be used (not JSON, not an object), else None."""
    return _load_record(run_dir)[1]


def update_record(run_dir: str | Path, run_id: str, config: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """Merge ``fields`` (plus run id and config) into the run record and write it atomically."""
    rec = read_record(run_dir)
    rec.update({"run_id": run_id, "config": config, **fields})
    write_text(record_path(run_dir), json.dumps(rec, indent=2, default=str))
    return rec


__all__ = ["CHECKPOINT_FILE", "RECORD_FILE", "SAMPLES_DIR", "KEPT_DIR", "checkpoint_path", "kept_checkpoint_path",
           "kept_steps", "record_path", "read_record",
           "update_record", "record_problem"]
