"""Samplers of the discrete-level paths: IHDM's δ-sampler and cold diffusion's Alg. 2."""
from __future__ import annotations

import dataclasses

import array_api_compat as aac

from ..paths.base import ConfigError, Path
from ..paths.cold_blur import ColdBlur
from ..paths.ihdm import IHDM
from .base import Sampler, notify, predict, register_sampler, times


class _Levels(Sampler):
    path_type: type = Path
    default_steps = None

    def path_refusal(self, path: Path):
        if not isinstance(path, self.path_type):
            return f"it is the sampler of path '{self.path_type.name}' only"
        return None

    def num_steps(self, path):
        if self.steps is not None and self.steps != path.levels:
            raise ConfigError(f"sampler '{self.name}' runs one step per level: steps must be "
                              f"{path.levels} (the path's levels), got {self.steps}")
        return path.levels

    def expected_nfe(self, path):
        return self.num_steps(path)


@register_sampler
@dataclasses.dataclass(frozen=True)
class IHDMDelta(_Levels):
    """IHDM (§4.4): for k = K..1, μ = u + f(u, k) (or B_{k−1} x̂), u ← μ + δ ξ; output the
    last μ. K NFE. Starts at level K, which IHDM never trains (§4.5, kept faithful)."""

    name = "ihdm_delta"
    summary = "IHDM: previous-level mean + delta noise per level (K NFE, stochastic)"
    stochastic = True
    needs = "prev_mean"
    path_type = IHDM
    delta: float | None = None

    def _run(self, path, denoise, z, target, noise, callback):
        delta = path.delta if self.delta is None else self.delta
        K = self.num_steps(path)
        for step, k in enumerate(range(K, 0, -1)):
            mean = z + predict(path, denoise, z, 1.0 - k / K, target, "prev_mean")
            z = mean + delta * noise(step) if k > 1 else mean
            notify(callback, step=step, t=1.0 - (k - 1) / K, z=z, xhat=None)
        return z


@register_sampler
@dataclasses.dataclass(frozen=True)
class ColdAlg2(_Levels):
    """Cold diffusion Alg. 2 (§7): x̂ = R(x_k, k); x_{k−1} = x_k − D(x̂, k) + D(x̂, k − 1). T NFE."""

    name = "cold_alg2"
    summary = "cold diffusion Alg. 2: x - D(x^,k) + D(x^,k-1) (T NFE)"
    path_type = ColdBlur

    def _run(self, path, denoise, z, target, noise, callback):
        xp = aac.array_namespace(z)
        T = self.num_steps(path)
        for step, k in enumerate(range(T, 0, -1)):
            xhat = predict(path, denoise, z, 1.0 - k / T, target, "x")
            level = xp.astype(times(z, float(k)), xp.int32)
            z = z - path.degrade(xhat, level) + path.degrade(xhat, level - 1)
            notify(callback, step=step, t=1.0 - (k - 1) / T, z=z, xhat=xhat)
        return z
