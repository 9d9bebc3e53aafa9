"""``cold_blur``: cold diffusion with a blur degradation (Bansal et al.; docs/methods.md §7)."""
from __future__ import annotations

import dataclasses
import math

import array_api_compat as aac
import numpy as np

from .. import spectral
from .._xp import Array, check_like, per_sample
from .base import ConfigError, Path, field, register_path, require

_SCHEDULES = ("cifar10", "exponential", "incremental")


@register_path
@dataclasses.dataclass(frozen=True)
class ColdBlur(Path):
    """Deterministic operator path z = D(x, k), k = T(1 − t) ∈ {0..T}, x-prediction only.

    D(x, k) applies k Gaussian blurs of std s_i (i < k); Gaussian blurs compose by adding
    variances, so D(x, k) = heat blur for τ_k = Σ_{i<k} s_i²/2. We blur in the DCT basis
    (reflective boundaries) rather than cold diffusion's circular/reflect convolutions
    (docs/methods.md §11.11). With ``final_mean`` the last level is the per-channel mean (a flat
    colour image, cold diffusion's generation setup). Schedules (§7): 'cifar10'
    s_i = i/100 + 0.35 (Special_6_routine), 'exponential' s_i = exp(b i), 'incremental'
    s_i = 0.1 (i + 1). Non-grid t snaps to the nearest level. Prior: one Gaussian fitted to the
    per-channel means of data, plus tiny noise (§7).
    """

    name = "cold_blur"
    summary = "cold diffusion, blur degradation (DCT heat blur, Alg. 2 sampler)"
    data_prior = True
    default_sampler = "cold_alg2"
    gaussian = False
    spectral = False
    targets = ("x",)
    loss_spaces = ("x",)
    kinds = ("x",)
    default_target = "x"
    default_loss = "x"
    default_norm = "l1"

    T: int = field(50, "number of degradation levels (CIFAR-10 script: 50)")
    schedule: str = field("cifar10", "per-step blur std: cifar10 | exponential | incremental")
    exp_rate: float = field(0.01, "b in the exponential schedule s_i = exp(b i)")
    final_mean: bool = field(True, "replace level T by the per-channel mean (generation setup)")
    prior_noise: float = field(0.002, "std of the tiny noise added to the flat prior image")

    def __post_init__(self) -> None:
        require(isinstance(self.T, int) and self.T >= 1, f"{self.name}: T must be an integer >= 1, got {self.T}")
        require(self.schedule in _SCHEDULES,
                f"{self.name}: unknown schedule '{self.schedule}'; known: {', '.join(_SCHEDULES)}")
        require(self.prior_noise >= 0, f"{self.name}: prior_noise must be >= 0, got {self.prior_noise}")

    @property
    def levels(self) -> int:
        return self.T

    def step_stds(self) -> np.ndarray:
        i = np.arange(self.T, dtype=np.float64)
        if self.schedule == "cifar10":
            return i / 100 + 0.35
        if self.schedule == "exponential":
            return np.exp(self.exp_rate * i)
        return 0.1 * (i + 1)

    def heat_times(self) -> np.ndarray:
        """τ_k for k = 0..T (cumulative variance / 2)."""
        return np.concatenate([[0.0], np.cumsum(self.step_stds() ** 2) / 2])

    def sample_t(self, u: Array) -> Array:
        """k ~ U{1..T} (cold diffusion trains k ∈ {0..T−1} applying k+1 kernels), t = 1 − k/T."""
        xp = aac.array_namespace(u)
        k = xp.clip(xp.floor(u * self.T), 0, self.T - 1) + 1
        return 1.0 - k / self.T

    def degrade(self, x: Array, k: Array) -> Array:
        """D(x, k) for integer levels k (B,)."""
        xp = aac.array_namespace(x)
        table = xp.asarray(self.heat_times(), dtype=x.dtype, device=aac.device(x))
        out = spectral.heat_blur(x, xp.take(table, k))
        if self.final_mean:
            axes = tuple(range(x.ndim - spectral.spatial_axes(x), x.ndim))
            flat = xp.mean(x, axis=axes, keepdims=True) * xp.ones_like(x)
            out = xp.where(per_sample(k == self.T, x), flat, out)
        return out

    def _corrupt(self, x, eps, t):
        return self.degrade(x, self.level_of_t(t))

    def velocity(self, x, eps, t):
        raise ConfigError("path 'cold_blur' is a deterministic operator path: it has no velocity "
                          "(x-prediction only, docs/methods.md §7)")

    def coefficients(self, kind, t, like):
        if kind != "x":
            raise ConfigError(f"path 'cold_blur' has no '{kind}' (x-prediction only, docs/methods.md §7)")
        xp = aac.array_namespace(like)
        one = per_sample(xp.ones_like(t), like)
        return one, 0.0 * one

    def prior(self, eps: Array, data: Array | None = None) -> Array:
        """Flat image m + prior_noise · (ε − its DC), m ~ N(mean, cov) of data's channel means.

        The Gaussian draw uses the DC part of ε (√(HW) × its spatial mean, N(0, 1) per channel)
        and the tiny noise the rest of ε: independent parts of one draw.
        """
        if data is None:
            raise ConfigError("path 'cold_blur' has a data-dependent prior (a Gaussian fitted to "
                              "the channel means of training images, docs/methods.md §7): pass data")
        xp = aac.array_namespace(eps)
        n_sp = spectral.spatial_axes(eps)
        if data.ndim != eps.ndim or tuple(data.shape[1:]) != tuple(eps.shape[1:]):
            raise ConfigError(f"data has shape {tuple(data.shape)}; expected (N,) + {tuple(eps.shape[1:])}")
        check_like(data, data, "data", "data")
        axes = tuple(range(eps.ndim - n_sp, eps.ndim))
        size = math.prod(eps.shape[eps.ndim - n_sp:])
        means = xp.reshape(xp.mean(data, axis=axes), (data.shape[0], -1))          # (N, C)
        mu = xp.mean(means, axis=0)
        centred = means - mu
        cov = xp.matmul(xp.permute_dims(centred, (1, 0)), centred) / max(data.shape[0] - 1, 1)
        eye = xp.eye(cov.shape[0], dtype=cov.dtype, device=aac.device(cov))
        chol = xp.linalg.cholesky(cov + 1e-6 * eye)
        dc = xp.mean(eps, axis=axes, keepdims=True)
        xi = xp.reshape(dc, (eps.shape[0], -1)) * math.sqrt(size)                   # (B, C)
        m = mu + xp.matmul(xi, xp.permute_dims(chol, (1, 0)))
        m = xp.reshape(m, dc.shape)
        return m + self.prior_noise * (eps - dc)
