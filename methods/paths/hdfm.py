"""``hdfm``: heat-dissipation flow matching, exact form (arXiv 2605.19371; docs/methods.md §6)."""
from __future__ import annotations

import dataclasses

import array_api_compat as aac

from .base import field, register_path, require
from .gaussian import InterpolantPath


@register_path
@dataclasses.dataclass(frozen=True)
class HDFM(InterpolantPath):
    """z_t = t u_t + (1 − t) s ε with u_t = exp(−a ln(1/max(t, t_min)) (−Δ)) x (docs/methods.md §6.2).

    Per frequency α_k(t) = t · max(t, t_min)^{a Λ_k}, σ = s(1 − t); heat time
    τ(t) = a ln(1/max(t, t_min)) (σ_eff = √(2τ) px). Exact velocity (§6.3):
    ż = u_t − s ε − a Δu_t, i.e. Laplacian coefficient a (not the code's 1).
    """

    name = "hdfm"
    summary = "HDFM exact: per-frequency gain t^(1+a*Lambda), exact velocity"
    default_sampler = "hdfm_exact"
    default_steps = 20
    default_target = "x"
    default_loss = "v"

    a: float = field(0.5, "heat-rate exponent a in t^(a Λ) (HDFM code: 0.5)")
    t_min: float = field(1e-4, "blur uses max(t, t_min) (HDFM code: 1e-4)")

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.a >= 0, f"{self.name}: a must be >= 0, got {self.a}")
        require(0 < self.t_min < 1, f"{self.name}: t_min must lie in (0, 1), got {self.t_min}")

    def heat_time(self, t):
        xp = aac.array_namespace(t)
        return -self.a * xp.log(xp.clip(t, self.t_min, None))

    def dheat_time(self, t):
        xp = aac.array_namespace(t)
        return xp.where(t > self.t_min, -self.a / xp.clip(t, self.t_min, None), 0.0)
