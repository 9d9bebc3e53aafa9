"""Checkpoints: written atomically and durably, read with ``torch.load(weights_only=True)``.

A missing, damaged or foreign file is a :class:`CheckpointError` naming the file — never a silent
restart, and never the advice to unpickle arbitrary code (``weights_only=False``).
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch

from hdfm_bench.core.io import write_with

#: the format tag every checkpoint carries
FORMAT = "hdfm-bench/1"


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
    return state


__all__ = ["FORMAT", "CheckpointError", "save", "copy", "load"]
