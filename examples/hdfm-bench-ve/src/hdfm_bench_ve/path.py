"""``ve``: variance-exploding noise (Song et al. 2021, SMLD/VE SDE) in hdfm-bench's convention.

    z_t = x + σ(t) ε,   σ(t) = σ_max^(1 − t) σ_min^t,

so t = 0 is the source (σ_max: the data is drowned) and t = 1 the data (σ_min: nearly clean). Unlike
noise flow matching the signal is never scaled down. The schedule is log-linear in t, so
σ'(t) = σ(t) ln(σ_min / σ_max). No blur: every conversion happens in pixel space, through the
spectral-Gaussian-path contract with a = 1 and a heat time of 0.
"""
from __future__ import annotations

import dataclasses
import math

import array_api_compat as aac

from hdfm_bench import register_path
from hdfm_bench.methods.paths.base import field, require
from hdfm_bench.methods.paths.gaussian import SpectralGaussianPath


@register_path
@dataclasses.dataclass(frozen=True)
class VarianceExploding(SpectralGaussianPath):
    """z = x + σ(t) ε with σ log-linear from ``sigma_max`` (t = 0) to ``sigma_min`` (t = 1); t ~ U(0, 1)."""

    name = "ve"
    summary = "variance exploding: z = x + sigma(t) eps, sigma log-linear (example plugin)"
    default_sampler = "ve_ddim"
    default_steps = 20
    blurs = False
    default_target = "x"
    default_loss = "x"
    sigma_max: float = field(20.0, "σ at t = 0 (the source)")
    sigma_min: float = field(0.01, "σ at t = 1 (the data end)")

    def __post_init__(self) -> None:
        require(0 < self.sigma_min < self.sigma_max, f"ve: need 0 < sigma_min < sigma_max, got {self.sigma_min}, "
                                                     f"{self.sigma_max}")

    @property
    def log_ratio(self) -> float:
        return math.log(self.sigma_min / self.sigma_max)

    def sample_t(self, u):
        return u

    def sigma_at(self, t: float) -> float:
        """σ(t) for a Python float (the sampler's grid)."""
        return self.sigma_max * math.exp(self.log_ratio * t)

    def scale(self, t):
        return aac.array_namespace(t).ones_like(t)

    def dscale(self, t):
        return aac.array_namespace(t).zeros_like(t)

    def heat_time(self, t):
        return aac.array_namespace(t).zeros_like(t)

    def dheat_time(self, t):
        return aac.array_namespace(t).zeros_like(t)

    def sigma(self, t):
        return self.sigma_max * aac.array_namespace(t).exp(self.log_ratio * t)

    def dsigma(self, t):
        return self.log_ratio * self.sigma(t)
