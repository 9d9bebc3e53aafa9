"""``blurring_diffusion``: Blurring Diffusion Models (Hoogeboom & Salimans, ICLR 2023; docs/methods.md §5)."""
from __future__ import annotations

import dataclasses
import math

import array_api_compat as aac

from .base import field, register_path, require
from .gaussian import SpectralGaussianPath


@register_path
@dataclasses.dataclass(frozen=True)
class BlurringDiffusion(SpectralGaussianPath):
    """Frequency-space VP process, written in t = 1 − τ (τ the BDM time, 0 = data).

    α_k = a(τ) · d_k(τ), d_k = (1 − d_min) exp(−Λ_k σ_B(τ)²/2) + d_min,
    σ_B(τ) = σ_B,max sin²(πτ/2); truncated cosine log-SNR λ(τ) = −2 ln tan(c₁τ + c₀),
    c₀ = atan(e^{−λ_max/2}), c₁ = atan(e^{−λ_min/2}) − c₀ (docs/methods.md §5.1). Since
    sigmoid(−2 ln tan u) = cos² u, a = cos u and σ = sin u with u = c₁τ + c₀: exact derivatives
    da/dτ = −c₁ sin u, dσ/dτ = c₁ cos u. τ ~ U(0, 1) in training (ε-prediction, §5.2).
    """

    name = "blurring_diffusion"
    summary = "BDM: VP diffusion in DCT space with sin^2 blur schedule and d_min floor"
    default_sampler = "posterior"
    default_steps = 50
    # Not the paper's ε-prediction / ε-loss (still available: target = eps, loss = eps): x-prediction with
    # the x-loss, because the ε-recipe needs the network to pass its input's noise through wherever a
    # frequency is still blurred (there ε ≈ z/σ), and the part it misses is amplified by up to
    # 1/(a(0)·d_min) over the sampling (docs/methods.md §5.4, §12.13; `hdfm-bench diagnose` measures it).
    default_target = "x"
    default_loss = "x"

    sigma_blur_max: float = field(20.0, "σ_B,max in px (re-implementations' CIFAR-10 value; paper per dataset [U])")
    d_min: float = field(1e-3, "frequency floor d_min keeping every frequency invertible (§5.1)")
    logsnr_min: float = field(-10.0, "λ_min of the truncated cosine log-SNR schedule")
    logsnr_max: float = field(10.0, "λ_max of the truncated cosine log-SNR schedule")

    def __post_init__(self) -> None:
        require(self.sigma_blur_max >= 0, f"{self.name}: sigma_blur_max must be >= 0, got {self.sigma_blur_max}")
        require(0 < self.d_min < 1, f"{self.name}: d_min must lie in (0, 1), got {self.d_min}")
        require(self.logsnr_min < self.logsnr_max,
                f"{self.name}: logsnr_min must be < logsnr_max, got {self.logsnr_min} >= {self.logsnr_max}")

    @property
    def floor(self) -> float:  # type: ignore[override]
        return self.d_min

    @property
    def _c(self) -> tuple[float, float]:
        c0 = math.atan(math.exp(-self.logsnr_max / 2))
        return c0, math.atan(math.exp(-self.logsnr_min / 2)) - c0

    def _u(self, t):
        c0, c1 = self._c
        return c1 * (1.0 - t) + c0

    def scale(self, t):
        return aac.array_namespace(t).cos(self._u(t))

    def dscale(self, t):  # d/dt = −d/dτ
        return self._c[1] * aac.array_namespace(t).sin(self._u(t))

    def sigma(self, t):
        return aac.array_namespace(t).sin(self._u(t))

    def dsigma(self, t):
        return -self._c[1] * aac.array_namespace(t).cos(self._u(t))

    def _sigma_blur(self, t):
        return self.sigma_blur_max * aac.array_namespace(t).sin(math.pi * (1.0 - t) / 2) ** 2

    def heat_time(self, t):
        return self._sigma_blur(t) ** 2 / 2

    def dheat_time(self, t):
        xp = aac.array_namespace(t)
        half = math.pi * (1.0 - t) / 2
        dsb_dtau = self.sigma_blur_max * math.pi * xp.sin(half) * xp.cos(half)
        return -self._sigma_blur(t) * dsb_dtau
