"""The ancestral / posterior sampler for spectral Gaussian paths (docs/methods.md §2.7, BDM §5.3)."""
from __future__ import annotations

import dataclasses

import array_api_compat as aac

from ..paths.base import ConfigError, Path
from ..paths.gaussian import SpectralGaussianPath
from .base import Sampler, notify, predict, register_sampler, times, uniform_grid


@register_sampler
@dataclasses.dataclass(frozen=True)
class Posterior(Sampler):
    """z_b ~ q(z_b | z_a, x̂) per frequency for t_a → t_b on the uniform grid; N NFE.

    Valid when the per-frequency SNR α_k/σ is non-decreasing in t (JiT, HDFM, BDM; for IHDM the
    DC transition is degenerate and the DC is kept from the prior). The last step adds no noise.
    ``clip_x`` clips x̂ to [−1, 1] before each step (DDPM's practice). Off by default: for blurring
    paths an ε-prediction turned into x̂ carries, at the frequencies still blurred, the noise the network
    failed to pass through divided by a·d_min (docs/methods.md §5.4), which the posterior mean multiplies
    back by α(t_b); clipping it in pixel space first saturates x̂ and destroys its low frequencies
    (measured on the default suite: BDM samples turn to grey noise with clipping, digits without).
    """

    name = "posterior"
    summary = "ancestral posterior steps q(z_b|z_a, x^) per frequency (N NFE, stochastic)"
    stochastic = True
    needs = "x"
    clip_x: bool = False
    #: dynamic thresholding (Imagen, Saharia et al. 2022 §2.3): s = max(1, the q-quantile of |x̂| per
    #: image), x̂ ← clip(x̂, −s, s)/s; 0 = off
    threshold: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.clip_x, bool):
            raise ConfigError(f"sampler 'posterior': clip_x must be true or false, got {self.clip_x!r}")
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, (int, float)) \
                or not 0 <= self.threshold < 1:
            raise ConfigError(f"sampler 'posterior': threshold must be a quantile in [0, 1) (0 = off), "
                              f"got {self.threshold!r}")

    def path_refusal(self, path: Path):
        if not isinstance(path, SpectralGaussianPath):
            return "the posterior step needs a spectral Gaussian path"
        return None

    def expected_nfe(self, path):
        return self.num_steps(path)

    def _run(self, path, denoise, z, target, noise, callback):
        grid = uniform_grid(self.num_steps(path))
        last = len(grid) - 2
        for i, (t, t_next) in enumerate(zip(grid[:-1], grid[1:])):
            xhat = predict(path, denoise, z, t, target, "x")
            if self.clip_x:
                xhat = aac.array_namespace(xhat).clip(xhat, -1.0, 1.0)
            if self.threshold:
                xhat = dynamic_threshold(xhat, self.threshold)
            xi = noise(i) if i < last else None
            z = path.posterior_step(z, xhat, times(z, t), times(z, t_next), xi)
            notify(callback, step=i, t=t_next, z=z, xhat=xhat)
        return z


def dynamic_threshold(xhat, q: float):
    """Imagen's dynamic thresholding: s = max(1, quantile_q |x̂|) per image, x̂ ← clip(x̂, −s, s)/s."""
    xp = aac.array_namespace(xhat)
    flat = xp.reshape(xp.abs(xhat), (xhat.shape[0], -1))
    k = min(flat.shape[1] - 1, int(q * flat.shape[1]))
    s = xp.sort(flat, axis=1)[:, k]  # the order statistic (Array API has no quantile)
    s = xp.reshape(xp.maximum(s, xp.ones_like(s)), (-1,) + (1,) * (xhat.ndim - 1))
    return xp.clip(xhat, -s, s) / s
