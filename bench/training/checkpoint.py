"""Checkpoints: written atomically and durably, read with ``torch.load(weights_only=True)``; what a
run's checkpoint holds (the payload every backend writes) and the rules for replacing and keeping one.

A missing, damaged or foreign file is a :class:`CheckpointError` naming the file — never a silent
restart, and never the advice to unpickle arbitrary code (``weights_only=False``).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch

from hdfm_bench.core.config import RunConfig
from hdfm_bench.core.io import write_with
from hdfm_bench.core.rundir import checkpoint_path, kept_checkpoint_path, read_record

#: the format tag every checkpoint carries
FORMAT = "hdfm-bench/1"
#: the entries every reader relies on
REQUIRED = ("run_id", "step", "model", "ema", "config")


class CheckpointError(ValueError):
    """A missing, corrupt, truncated or mismatched checkpoint."""


def save(dest: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``dest`` via a temporary file, fsync and a rename (a kill leaves the old one)."""
    return write_with(dest, lambda tmp: torch.save(state, tmp))


def copy(src: str | Path, dest: str | Path) -> Path:
    """An atomic copy of the checkpoint ``src`` at ``dest`` (a kept checkpoint along training)."""
    return write_with(dest, lambda tmp: shutil.copyfile(src, tmp))


def load(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; any damage is a CheckpointError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, pickle error, wrong format: all mean "damaged"
        text = str(err).strip()
        msg = text.splitlines()[0] if text else type(err).__name__
        if "weights_only" in text or "Weights only load failed" in text:
            msg = "not a weights-only torch file"  # torch's advice would be to unpickle code: never
        raise CheckpointError(f"cannot read checkpoint {path} (corrupt or truncated?): {msg}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an hdfm-bench checkpoint")
    missing = [k for k in REQUIRED if k not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path} is damaged: it has no {', '.join(map(repr, missing))} entry")
    return state


def check_finite(weights: dict[str, Any], path: str | Path) -> None:
    """Weights that are NaN or infinite anywhere are a CheckpointError naming the first such tensor."""
    for name, value in weights.items():
        if torch.is_tensor(value) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise CheckpointError(f"checkpoint {path} holds non-finite weights ({name}): the run diverged or the "
                                  "file was damaged")


# ---- the run's checkpoint ---------------------------------------------------------------------

def checkpoint_payload(cfg: RunConfig, step: int, *, model: dict, ema: dict[float, dict], ema_updates: int,
                       optimizer: dict, rng: dict, history: list, wall_time: float) -> dict:
    """What every backend's checkpoint holds (weights under the torch model's parameter names)."""
    out = {"format": FORMAT, "run_id": cfg.run_id(), "step": step, "model": model,
           "ema": {repr(d): sd for d, sd in ema.items()}, "ema_updates": ema_updates, "optimizer": optimizer,
           "rng": rng, "history": history, "wall_time": wall_time, "config": json.dumps(cfg.to_dict())}
    if cfg.backend != "torch":
        out["backend"] = cfg.backend
    return out


def keep_checkpoint(run_dir: Path, cfg: RunConfig, step: int) -> None:
    """With ``keep_every``, keep a copy of the checkpoint just written at ``step`` (for FID against
    training steps: ``--checkpoint-step`` samples from it)."""
    if cfg.keep_every and step % cfg.keep_every == 0:
        copy(checkpoint_path(run_dir), kept_checkpoint_path(run_dir, step))


def check_not_older(path: Path, step: int) -> None:
    """Never write a checkpoint of ``step`` over a newer one (the record says which step is on disk)."""
    on_disk = int(read_record(path.parent).get("step") or 0)
    if path.exists() and on_disk > step:
        raise CheckpointError(f"{path} holds step {on_disk}, newer than this process's step {step}: another "
                              f"process trained this run; not overwritten")


def load_own_checkpoint(path: Path, cfg: RunConfig) -> dict:
    """The run's checkpoint, refused (CheckpointError) when it belongs to another run or backend."""
    state = load(path)
    if state["run_id"] != cfg.run_id():
        raise CheckpointError(f"{path} belongs to run {state['run_id']}, not {cfg.run_id()}")
    if state.get("backend", "torch") != cfg.backend:
        raise CheckpointError(f"{path} was written by the {state.get('backend', 'torch')} backend, "
                              f"not {cfg.backend}")
    return state


__all__ = ["FORMAT", "CheckpointError", "save", "copy", "load", "check_finite", "checkpoint_payload", "keep_checkpoint",
           "check_not_older", "load_own_checkpoint"]
