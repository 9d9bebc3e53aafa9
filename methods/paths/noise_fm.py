"""``noise_fm``: rectified flow / JiT, z = t x + (1 − t) s ε (docs/methods.md §3)."""
from __future__ import annotations

import dataclasses

from .base import register_path
from .gaussian import InterpolantPath


@register_path
@dataclasses.dataclass(frozen=True)
class NoiseFM(InterpolantPath):
    """JiT (Li & He, arXiv 2511.13720; docs/methods.md §3.1): α = t, σ = s(1 − t), velocity x − s ε.

    No blur: every conversion happens in pixel space. Logit-normal t (P_mean −0.8, P_std 0.8),
    clamp 1 − t ≥ 0.05 where dividing by it (JiT code, §3.3).
    """

    name = "noise_fm"
    summary = "JiT rectified flow: z = t x + (1-t) s eps"
    default_sampler = "heun"
    default_steps = 20
    blurs = False
    default_target = "x"
    default_loss = "v"
