"""``ihdm``: inverse heat dissipation (Rissanen, Heinonen, Solin, ICLR 2023; docs/methods.md §4)."""
from __future__ import annotations

import dataclasses
import math

import array_api_compat as aac

from .. import spectral
from .._xp import Array, check_like
from .base import ConfigError, field, register_path, require
from .gaussian import SpectralGaussianPath


@register_path
@dataclasses.dataclass(frozen=True)
class IHDM(SpectralGaussianPath):
    """K blur levels, q(u_k | x) = N(B_k x, σ² I), B_k = heat blur of std σ_B,k (docs/methods.md §4.1).

    σ_B,k log-spaced from σ_B,min (k = 1) to σ_B,max (k = K), σ_B,0 = 0; level k ↔ t = 1 − k/K.
    Between levels the continuous interpolation of §4.7 is used (linear in σ_B over the last
    level, so the path is continuous), so ``velocity`` exists (σ' = 0 ⇒ v = A'_t x). Training
    levels k ~ U{1..K−1}; the native target is the previous
    level's mean B_{k−1} x, predicted as a residual on z (§4.3); the prior is data-dependent:
    B_K x_train + δ ε (§4.4). Noise σ = 0.01 on [0, 1] data is 0.02 on our [-1, 1] scale.
    """

    name = "ihdm"
    summary = "IHDM: K log-spaced heat-blur levels + small constant noise, data prior"
    data_prior = True
    default_sampler = "ihdm_delta"
    targets = ("x", "prev_mean")
    loss_spaces = ("x", "prev_mean")
    kinds = ("x", "v", "prev_mean")
    default_target = "prev_mean"
    default_loss = "prev_mean"

    K: int = field(200, "number of blur levels (CIFAR-10 config: 200; MNIST: 100)")
    sigma_blur_min: float = field(0.5, "σ_B at level 1, px (§4.1)")
    sigma_blur_max: float = field(24.0, "σ_B at level K, px (CIFAR-10: 24; MNIST: 20)")
    noise_std: float = field(0.02, "constant noise std σ on [-1, 1] data (0.01 on [0, 1])")
    delta: float = field(0.025, "sampling/prior noise δ on [-1, 1] (1.25 σ, §4.4)")

    def __post_init__(self) -> None:
        require(isinstance(self.K, int) and self.K >= 2, f"{self.name}: K must be an integer >= 2, got {self.K}")
        require(0 < self.sigma_blur_min < self.sigma_blur_max,
                f"{self.name}: need 0 < sigma_blur_min < sigma_blur_max, "
                f"got {self.sigma_blur_min}, {self.sigma_blur_max}")
        require(self.noise_std > 0, f"{self.name}: noise_std must be > 0, got {self.noise_std}")
        require(self.delta >= 0, f"{self.name}: delta must be >= 0, got {self.delta}")

    @property
    def levels(self) -> int:
        return self.K

    def sample_t(self, u: Array) -> Array:
        """k = 1 + ⌊u (K − 1)⌋ ∈ {1..K−1} (IHDM trains randint(1, K)), t = 1 − k/K."""
        xp = aac.array_namespace(u)
        k = xp.clip(xp.floor(u * (self.K - 1)), 0, self.K - 2) + 1
        return 1.0 - k / self.K

    def _log_ratio(self) -> float:
        return math.log(self.sigma_blur_max / self.sigma_blur_min)

    def _sigma_blur(self, t):
        """σ_B(t): log-linear between levels 1..K (§4.7); linear from σ_B,min to 0 over the last
        level (k ∈ [0, 1]) so the continuous path has no jump and the ODE can cross it."""
        xp = aac.array_namespace(t)
        kc = self.K * (1.0 - t)
        log_sb = math.log(self.sigma_blur_min) + (kc - 1.0) / (self.K - 1) * self._log_ratio()
        # Level 1 sits exactly at kc = 1; tolerate rounding of t = 1 - 1/K.
        return xp.where(kc >= 1.0 - 1e-9, xp.exp(log_sb), self.sigma_blur_min * xp.clip(kc, 0.0, 1.0))

    def _dlog_sigma_blur(self, t):
        xp = aac.array_namespace(t)
        kc = self.K * (1.0 - t)
        last = -1.0 / xp.clip(1.0 - t, 1e-30, None)  # d ln(σ_min K (1 − t)) / dt
        return xp.where(kc >= 1.0 - 1e-9, -self.K / (self.K - 1) * self._log_ratio() + 0.0 * t, last)

    def scale(self, t): return aac.array_namespace(t).ones_like(t)
    def dscale(self, t): return aac.array_namespace(t).zeros_like(t)
    def sigma(self, t): return self.noise_std * aac.array_namespace(t).ones_like(t)
    def dsigma(self, t): return aac.array_namespace(t).zeros_like(t)

    def heat_time(self, t):
        return self._sigma_blur(t) ** 2 / 2

    def dheat_time(self, t):
        # τ = σ_B²/2  ⇒  τ' = σ_B² · d ln σ_B / dt
        return self._sigma_blur(t) ** 2 * self._dlog_sigma_blur(t)

    # ---- the native target ---------------------------------------------------------------------
    def previous_time(self, t: Array) -> Array:
        """t of the previous (less blurred) level: t + 1/K, capped at 1."""
        return aac.array_namespace(t).clip(t + 1.0 / self.K, None, 1.0)

    def coefficients(self, kind, t, like):
        if kind == "prev_mean":  # raw = B_{k-1} x − z: residual on the input (§4.3)
            xp = aac.array_namespace(like)
            a = self.alpha(self.previous_time(t), like)
            return a, -xp.ones_like(a)
        return super().coefficients(kind, t, like)

    def refusal(self, target, loss_space=None):
        why = {
            "eps": "ε̂→x̂ divides by α_k = exp(−Λσ_B²/2), numerically zero at high frequency",
            "v": "v has no DC component (σ' = 0, α'_DC = 0), so x cannot be recovered from v̂",
        }
        if target in why:
            return f"path 'ihdm' cannot use target '{target}': {why[target]} (docs/methods.md §2.4)"
        if target == "prev_mean" and loss_space not in (None, "prev_mean"):
            return ("path 'ihdm' cannot measure a 'prev_mean' prediction in space "
                    f"'{loss_space}': that needs B_(k-1)^-1, gains up to exp(Λσ²/2) (docs/methods.md §2.9)")
        return super().refusal(target, loss_space)

    def conversion_refusal(self, src, dst):
        if src == "prev_mean" and dst != src:
            return ("path 'ihdm' cannot convert 'prev_mean' to another kind: that needs "
                    "B_(k-1)^-1 (docs/methods.md §2.9)")
        return super().conversion_refusal(src, dst)

    def prior(self, eps: Array, data: Array | None = None) -> Array:
        """u_K = B_K x_data + δ ε: the data-dependent prior of IHDM's evaluation (§4.4)."""
        if data is None:
            raise ConfigError("path 'ihdm' has a data-dependent prior (blurred training images, "
                              "docs/methods.md §4.4): pass data")
        check_like(data, eps, "data", "eps")
        tau_max = self.sigma_blur_max ** 2 / 2
        return spectral.heat_blur(data, tau_max) + self.delta * eps
