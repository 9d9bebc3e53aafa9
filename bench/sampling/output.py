"""Writing samples: a PNG grid, the uint8 samples with their labels, and the protocol."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from hdfm_bench.core.io import write_text, write_with
from hdfm_bench.tasks import unit_to_u8


def write_grid(samples: torch.Tensor, dest: str | Path, nrow: int = 10) -> Path:
    """Save a PNG grid of images in [-1, 1] (torchvision's make_grid), atomically."""
    from torchvision.utils import save_image

    return write_with(dest, lambda tmp: save_image((samples + 1) / 2, tmp, nrow=nrow, padding=1, pad_value=1.0,
                                                   format="png"))


def write_samples(result: dict, dest_stem: str | Path) -> dict[str, Path]:
    """``<stem>.png`` (grid), ``<stem>.pt`` (uint8 samples + labels), ``<stem>.json`` (protocol)."""
    stem = Path(dest_stem)
    named = {ext: stem.parent / f"{stem.name}.{ext}" for ext in ("pt", "png", "json")}  # stems may hold dots
    u8 = unit_to_u8(result["samples"])
    write_with(named["pt"], lambda tmp: torch.save({"samples": u8, "labels": result["labels"]}, tmp))
    grid = write_grid(result["samples"], named["png"])
    meta = write_text(named["json"], json.dumps(result["protocol"], indent=2))
    return {"grid": grid, "samples": named["pt"], "protocol": meta}


__all__ = ["write_grid", "write_samples"]
