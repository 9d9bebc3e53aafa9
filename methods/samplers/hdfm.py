"""HDFM's split-velocity samplers: adaptive β (released code) and exact β = a (docs/methods.md §6.5)."""
from __future__ import annotations

import dataclasses

import array_api_compat as aac

from .._xp import per_sample
from ..paths.base import ConfigError, Path
from ..paths.gaussian import InterpolantPath
from .base import Sampler, notify, predict, register_sampler, uniform_grid


def _split(path, denoise, z, t, target):
    xp = aac.array_namespace(z)
    xhat = predict(path, denoise, z, t, target, "x")
    return path.split_velocity(xhat, z, xp.full((z.shape[0],), t, dtype=z.dtype, device=aac.device(z)))


class _Split(Sampler):
    needs = "x"

    def path_refusal(self, path: Path):
        if not isinstance(path, InterpolantPath):
            return "it needs HDFM's split velocity b − βΔu (paths noise_fm, hdfm, hdfm_code)"
        return None


@register_sampler
@dataclasses.dataclass(frozen=True)
class HDFMAdaptive(_Split):
    """HDFM code's sampler (§6.5): per step two evaluations, b, ℓ at (z, t) and (z̄, t'),
    z̄ = z + h(b − a ℓ); β = clip(S_no / (S_full + S_no), β_min, β_max) per sample with
    S_full = mean((Δb − Δℓ)²), S_no = mean(Δb²); update z ← z + h(b − β ℓ) ("euler") or
    z ← z + h(½(b + b') − β ½(ℓ + ℓ')) ("heun"; the last step always "euler"). 2N NFE.
    Not the path's ODE (which has β ≡ a): it changes the high-frequency energy (§6.6).
    """

    name = "hdfm_adaptive"
    summary = "HDFM code: adaptive beta per sample and step (2N NFE)"
    mode: str = "heun"
    beta_min: float = 0.05
    beta_max: float = 0.95

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mode not in ("euler", "heun"):
            raise ConfigError(f"sampler 'hdfm_adaptive': mode must be 'euler' or 'heun', got '{self.mode}'")
        if not 0 <= self.beta_min <= self.beta_max <= 1:
            raise ConfigError("sampler 'hdfm_adaptive': need 0 <= beta_min <= beta_max <= 1")

    def expected_nfe(self, path):
        return 2 * self.num_steps(path)

    def _run(self, path, denoise, z, target, noise, callback):
        xp = aac.array_namespace(z)
        a = getattr(path, "a", 0.0)
        grid = uniform_grid(self.num_steps(path))
        last = len(grid) - 2
        axes = tuple(range(1, z.ndim))
        for i, (t, t_next) in enumerate(zip(grid[:-1], grid[1:])):
            h = t_next - t
            b, lap = _split(path, denoise, z, t, target)
            b2, lap2 = _split(path, denoise, z + h * (b - a * lap), t_next, target)
            s_full = xp.mean(((b2 - lap2) - (b - lap)) ** 2, axis=axes) + 1e-12
            s_no = xp.mean((b2 - b) ** 2, axis=axes) + 1e-12
            beta = per_sample(xp.clip(s_no / (s_full + s_no), self.beta_min, self.beta_max), z)
            if self.mode == "heun" and i < last:
                z = z + h * (0.5 * (b + b2) - beta * 0.5 * (lap + lap2))
            else:
                z = z + h * (b - beta * lap)
            notify(callback, step=i, t=t_next, z=z, xhat=None, beta=beta)
        return z


@register_sampler
@dataclasses.dataclass(frozen=True)
class HDFMExact(_Split):
    """The same split form with the exact β = a (the path's probability-flow ODE, §6.5–6.6),
    integrated like JiT: Heun steps, final Euler; 2N − 1 NFE."""

    name = "hdfm_exact"
    summary = "HDFM split velocity with exact beta = a, Heun + final Euler (2N-1 NFE)"

    def expected_nfe(self, path):
        return 2 * self.num_steps(path) - 1

    def _run(self, path, denoise, z, target, noise, callback):
        a = getattr(path, "a", 0.0)
        grid = uniform_grid(self.num_steps(path))
        last = len(grid) - 2
        for i, (t, t_next) in enumerate(zip(grid[:-1], grid[1:])):
            h = t_next - t
            b, lap = _split(path, denoise, z, t, target)
            v = b - a * lap
            if i < last:
                b2, lap2 = _split(path, denoise, z + h * v, t_next, target)
                v = 0.5 * (v + b2 - a * lap2)
            z = z + h * v
            notify(callback, step=i, t=t_next, z=z, xhat=None)
        return z
