"""Checkpoints: written atomically, read with ``torch.load(weights_only=True)``, never silently skipped."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .io import atomic_path


class CheckpointError(ValueError):
    """A missing, corrupt, truncated or mismatched checkpoint."""


def save(dest: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``dest`` via a temporary file and a rename (a kill leaves the old one)."""
    with atomic_path(dest) as tmp:
        torch.save(state, tmp)
    return Path(dest)


def load(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; any damage is a CheckpointError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, pickle error, wrong format: all mean "damaged"
        msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"cannot read checkpoint {path} (corrupt or truncated?): {msg}") from None
    if not isinstance(state, dict) or "format" not in state or state.get("format") != "hdfm-bench/1":
        raise CheckpointError(f"{path} is not an hdfm-bench checkpoint")
    return state
