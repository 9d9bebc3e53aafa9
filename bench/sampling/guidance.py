"""Classifier-free guidance with JiT's interval, and the balanced class labels of an evaluation."""
from __future__ import annotations

from collections.abc import Sequence

import torch

from .settings import DEFAULT_CFG_INTERVAL


class Guided:
    """Classifier-free guidance around a backbone (docs/methods.md §2.8; JiT §3.5).

    out = uncond + w (cond − uncond) with w = ``scale`` where t_low < t < t_high (the lower test
    skipped when t_low = 0), else w = 1. Both branches run in one doubled batch at every call, as
    in the reference code, so each call counts 2 network evaluations (``evals_per_call``); at
    scale 1 only the conditional branch runs (1 evaluation). Guiding the raw output guides every
    quantity affine in it (x̂, ε̂, v̂) identically.
    """

    def __init__(self, model: torch.nn.Module, y: torch.Tensor | None, null: int | None,
                 scale: float = 1.0, interval: Sequence[float] = DEFAULT_CFG_INTERVAL):
        if scale != 1.0 and (y is None or null is None):
            raise ValueError("classifier-free guidance needs a class-conditional model and class labels")
        lo, hi = interval
        if not 0 <= lo < hi <= 1:
            raise ValueError(f"CFG interval must satisfy 0 <= low < high <= 1, got {list(interval)}")
        self.model, self.y, self.null, self.scale, self.interval = model, y, null, float(scale), (lo, hi)
        self.evals_per_call = 2 if scale != 1.0 else 1

    def weight(self, t: torch.Tensor) -> torch.Tensor:
        lo, hi = self.interval
        inside = t < hi
        if lo > 0:
            inside = inside & (t > lo)
        return torch.where(inside, torch.full_like(t, self.scale), torch.ones_like(t))

    @torch.no_grad()
    def __call__(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if self.evals_per_call == 1:
            return self.model(z, t, self.y)
        null = torch.full_like(self.y, self.null)
        out = self.model(torch.cat([z, z]), torch.cat([t, t]), torch.cat([self.y, null]))
        cond, uncond = out.chunk(2)
        w = self.weight(t).reshape((-1,) + (1,) * (z.ndim - 1))
        return uncond + w * (cond - uncond)


__all__ = ["Guided"]
