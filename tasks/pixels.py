"""The project's one mapping between uint8 pixels (0..255) and images in [-1, 1]."""
from __future__ import annotations

from typing import Any

import torch


def u8_to_unit(u8: Any) -> torch.Tensor:
    """uint8 array/tensor 0..255 -> float32 tensor in [-1, 1] (u / 127.5 - 1): the project's mapping."""
    return torch.as_tensor(u8).to(torch.float32).div(127.5).sub_(1.0)


def unit_to_u8(x: Any) -> torch.Tensor:
    """Images in [-1, 1] -> uint8 0..255, round((x + 1) · 127.5) after clamping: the inverse mapping."""
    x = torch.as_tensor(x)
    return ((x.float().clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)


__all__ = ["u8_to_unit", "unit_to_u8"]
