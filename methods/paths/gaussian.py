"""Spectral Gaussian paths (SGP, docs/methods.md §2.2) and the JiT-style interpolant family.

An SGP is ``z_t = A_t x + σ(t) ε`` with ``A_t = Vᵀ diag(α(t)) V`` diagonal in the DCT basis.
Every SGP here has gains of the form

    α_k(t) = c(t) · [(1 − f) · exp(−Λ_k τ(t)) + f]

(a scalar scale c, a heat time τ, a frequency floor f; docs/methods.md §3–§6), so ``A_t x`` is a
scaled heat blur computed with two batched matmuls (:func:`spectral.heat_blur`), and every
derivative is analytic.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import array_api_compat as aac

from .. import spectral
from .._xp import Array, ndtri, per_sample
from .base import Path, field, require


@dataclasses.dataclass(frozen=True)
class SpectralGaussianPath(Path):
    """Generic SGP: subclasses give c(t), τ(t), σ(t) and their t-derivatives as (B,) arrays."""

    blurs: ClassVar[bool] = True  # False: τ ≡ 0, everything stays in pixel space
    floor: ClassVar[float] = 0.0  # f in the gain; BDM overrides with its d_min

    # ---- schedule hooks -------------------------------------------------------------------
    def scale(self, t: Array) -> Array: raise NotImplementedError
    def dscale(self, t: Array) -> Array: raise NotImplementedError
    def heat_time(self, t: Array) -> Array: raise NotImplementedError
    def dheat_time(self, t: Array) -> Array: raise NotImplementedError
    def sigma(self, t: Array) -> Array: raise NotImplementedError
    def dsigma(self, t: Array) -> Array: raise NotImplementedError

    @property
    def spectral(self) -> bool:  # type: ignore[override]
        return self.blurs

    # ---- per-frequency gains ------------------------------------------------------------------
    def blur_gain(self, t: Array, like: Array) -> Array:
        """(1 − f) exp(−Λ τ(t)) + f, shaped to broadcast against the DCT of ``like``."""
        if not self.blurs:
            xp = aac.array_namespace(like)
            return per_sample(xp.ones_like(t), like)
        g = _expo(spectral.eigenvalues(like), per_sample(self.heat_time(t), like))
        return g if self.floor == 0 else (1.0 - self.floor) * g + self.floor

    def alpha(self, t: Array, like: Array) -> Array:
        """α_k(t) per basis coefficient (docs/methods.md §2.2)."""
        return per_sample(self.scale(t), like) * self.blur_gain(t, like)

    def dalpha(self, t: Array, like: Array) -> Array:
        """dα_k/dt = c' G + c (1 − f)(−Λ τ') exp(−Λ τ)."""
        out = per_sample(self.dscale(t), like) * self.blur_gain(t, like)
        if self.blurs:
            lam = spectral.eigenvalues(like)
            heat = _expo(lam, per_sample(self.heat_time(t), like))
            out = out - per_sample(self.scale(t) * self.dheat_time(t), like) * (1.0 - self.floor) * lam * heat
        return out

    # ---- the contract ------------------------------------------------------------------------
    def _corrupt(self, x: Array, eps: Array, t: Array) -> Array:
        ax = x
        if self.blurs:
            ax = spectral.heat_blur(x, self.heat_time(t))
            if self.floor:
                ax = (1.0 - self.floor) * ax + self.floor * x
        return per_sample(self.scale(t), x) * ax + per_sample(self.sigma(t), x) * eps

    def velocity(self, x: Array, eps: Array, t: Array) -> Array:
        """Exact dz/dt = A'_t x + σ'(t) ε (docs/methods.md §2.2)."""
        self._check(x, eps, t)
        noise = per_sample(self.dsigma(t), x) * eps
        if not self.blurs:
            return per_sample(self.dscale(t), x) * x + noise
        return spectral.apply_gain(x, self.dalpha(t, x)) + noise

    def prior(self, eps: Array, data: Array | None = None) -> Array:
        """z_0 = σ(0) ε (α(0) x is zero, or e^{-λmax/2}-small for BDM)."""
        xp = aac.array_namespace(eps)
        return self.sigma(xp.zeros((1,), dtype=eps.dtype, device=aac.device(eps)))[0] * eps

    def coefficients(self, kind: str, t: Array, like: Array) -> tuple[Array, Array]:
        xp = aac.array_namespace(like)
        if kind == "x":
            one = per_sample(xp.ones_like(t), like)
            return one, 0.0 * one
        # Clamp on t where conversions divide by σ(t) or α(t) (JiT's t_eps; 0: none needed).
        t_eps = getattr(self, "t_eps", 0.0)
        t_lo = xp.clip(t, t_eps, 1.0)
        t_hi = xp.clip(t, 0.0, 1.0 - t_eps)
        if kind == "eps":
            inv_sig = 1.0 / per_sample(self.sigma(t_hi), like)
            return -self.alpha(t_lo, like) * inv_sig, inv_sig * per_sample(xp.ones_like(t), like)
        if kind == "v":
            return self._v_coefficients(t, t_hi, like)
        raise ValueError(f"path '{self.name}' has no coefficients for '{kind}'")

    def _v_coefficients(self, t: Array, t_hi: Array, like: Array) -> tuple[Array, Array]:
        """v = A'x + σ'(z − A x)/σ̄  ⇒  a = α' − (σ'/σ̄) α, b = σ'/σ̄ (docs/methods.md §2.4)."""
        ratio = per_sample(self.dsigma(t) / self.sigma(t_hi), like)
        return self.dalpha(t, like) - ratio * self.alpha(t, like), ratio * per_sample(
            aac.array_namespace(like).ones_like(t), like)

    def posterior_step(self, z: Array, xhat: Array, t_a: Array, t_b: Array,
                       xi: Array | None) -> Array:
        """Ancestral step t_a → t_b > t_a given x̂ (docs/methods.md §2.7), per frequency:

        r = α(t_a)/α(t_b), s² = σ_a² − r² σ_b², Var = σ_b² s² / (s² + r² σ_b²),
        μ = (r σ_b² z̃ + α(t_b) s² x̂̃) / (s² + r² σ_b²), z̃_b = μ + √Var ξ̃.
        Written without dividing by σ_b, so the last step to σ(1) = 0 lands on α(1) x̂.
        ``xi=None`` returns the mean (the usual noise-free last step).
        """
        xp = aac.array_namespace(z)
        al_a, al_b = self.alpha(t_a, z), self.alpha(t_b, z)
        r = xp.where(al_b > 0, al_a / xp.where(al_b > 0, al_b, 1.0), 0.0)
        sa2 = per_sample(self.sigma(t_a), z) ** 2
        sb2 = per_sample(self.sigma(t_b), z) ** 2
        s2 = xp.clip(sa2 - r * r * sb2, 0.0, None)
        den = s2 + r * r * sb2
        den = xp.where(den > 0, den, 1.0)
        mean = (r * sb2 * self.to_basis(z) + al_b * s2 * self.to_basis(xhat)) / den
        if xi is not None:
            mean = mean + xp.sqrt(sb2 * s2 / den) * self.to_basis(xi)
        return self.from_basis(mean)


def _expo(lam: Array, tau: Array) -> Array:
    xp = aac.array_namespace(tau)
    return xp.exp(-lam * tau)


@dataclasses.dataclass(frozen=True)
class InterpolantPath(SpectralGaussianPath):
    """JiT-style interpolant z = t·G_t x + (1 − t)·s·ε with G_t = exp(−Λ τ(t)) (JiT §3, HDFM §6).

    Time sampling logit-normal: t = sigmoid(P_mean + P_std n), n ~ N(0, 1) (docs/methods.md §3.1).
    Conversions divide by max(1 − t, t_eps) like JiT's code (docs/methods.md §3.3): the velocity
    coefficients are a_v = G/max(1−t, t_eps) + c_Λ Λ G and b_v = −1/max(1−t, t_eps), with
    c_Λ = −t τ'(t) (the exact value, docs/methods.md §6.3; HDFM-code overrides it).
    """

    noise_scale: float = field(1.0, "s: source std, z_0 = s ε (JiT: 1 @256, 2 @512, 4 @1024)")
    t_eps: float = field(0.05, "clamp 1 - t >= t_eps (and t >= t_eps) where dividing by them (JiT code)")
    p_mean: float = field(-0.8, "logit-normal mean of training t (JiT §3.1)")
    p_std: float = field(0.8, "logit-normal std of training t (JiT §3.1)")

    def __post_init__(self) -> None:
        require(self.noise_scale > 0, f"{self.name}: noise_scale must be > 0, got {self.noise_scale}")
        require(0 <= self.t_eps < 0.5, f"{self.name}: t_eps must lie in [0, 0.5), got {self.t_eps}")
        require(self.p_std > 0, f"{self.name}: p_std must be > 0, got {self.p_std}")

    def sample_t(self, u: Array) -> Array:
        xp = aac.array_namespace(u)
        return 1.0 / (1.0 + xp.exp(-(self.p_mean + self.p_std * ndtri(u))))

    def scale(self, t): return t
    def dscale(self, t): return aac.array_namespace(t).ones_like(t)
    def sigma(self, t): return self.noise_scale * (1.0 - t)
    def dsigma(self, t): return -self.noise_scale * aac.array_namespace(t).ones_like(t)

    def laplacian_coefficient(self, t: Array) -> Array:
        """c_Λ(t) in a_v: the weight of Λ G in the velocity (exact: −t τ'(t))."""
        return -t * self.dheat_time(t)

    def _v_coefficients(self, t, t_hi, like):
        xp = aac.array_namespace(like)
        inv = 1.0 / xp.clip(1.0 - t, self.t_eps, None)
        g = self.blur_gain(t, like)
        a = per_sample(inv, like) * g
        if self.blurs:
            a = a + per_sample(self.laplacian_coefficient(t), like) * spectral.eigenvalues(like) * g
        return a, -per_sample(inv, like) * per_sample(xp.ones_like(t), like)

    def split_velocity(self, xhat: Array, z: Array, t: Array) -> tuple[Array, Array]:
        """HDFM's two velocity parts (docs/methods.md §6.5): b = (G x̂ − z)/max(1−t, t_eps), ℓ = Δ G x̂.

        The exact velocity is b − a ℓ; HDFM's adaptive sampler combines them as b − β ℓ.
        """
        xp = aac.array_namespace(z)
        u = spectral.heat_blur(xhat, self.heat_time(t)) if self.blurs else xhat
        b = (u - z) / per_sample(xp.clip(1.0 - t, self.t_eps, None), z)
        lap = spectral.laplacian(u) if self.blurs else 0.0 * u
        return b, lap
