"""``hdfm_code``: HDFM as in its released code (docs/methods.md §6.4–6.5)."""
from __future__ import annotations

import dataclasses
import functools

import array_api_compat as aac

from .base import field, register_path
from .hdfm import HDFM


@register_path
@dataclasses.dataclass(frozen=True)
class HDFMCode(HDFM):
    """Same forward process as ``hdfm``; its "v" uses Laplacian coefficient ``target_laplacian``.

    Code target (§6.4): v = (u_t − z)/max(1 − t, t_eps) − c Δu_t with c = 1, which equals
    ż − (c − a)Δu_t: not the path velocity unless c = a. For x-prediction it only re-weights
    the loss per frequency (ratio ≤ 2); a network that outputs this "v" directly learns a
    non-derivative field. Sample with the adaptive-β sampler (``hdfm_adaptive``).
    """

    name = "hdfm_code"
    summary = "HDFM released-code variant: target Laplacian coefficient c (default 1)"
    default_sampler = "hdfm_adaptive"
    default_steps = 20

    target_laplacian: float = field(1.0, "c in the code's target v = b - c*Δu (code: 1.0; exact: a)")

    def laplacian_coefficient(self, t):
        return self.target_laplacian * aac.array_namespace(t).ones_like(t)

    @functools.cached_property
    def exact(self) -> HDFM:
        """The same forward process with the exact velocity (what ODE samplers integrate)."""
        return HDFM(**{f.name: getattr(self, f.name) for f in dataclasses.fields(HDFM)})

    def ode_velocity(self, raw, target, z, t):
        """The path's true E[ż | z] (coefficient a), not the code's training "v"."""
        return self.exact.convert(self.convert(raw, target, "x", z, t), "x", "v", z, t)
