"""Deterministic ODE samplers on the velocity v̂ = E[ż | z] (docs/methods.md §2.6, §3.4)."""
from __future__ import annotations

import dataclasses

from ..paths.base import Path
from .base import Sampler, notify, predict, register_sampler, uniform_grid


class _ODE(Sampler):
    needs = "v"

    def path_refusal(self, path: Path):
        if not path.gaussian:
            return "it integrates the probability-flow ODE, which needs a Gaussian path"
        return None


@register_sampler
@dataclasses.dataclass(frozen=True)
class Euler(_ODE):
    """z ← z + h v̂(z, t) on the uniform grid; N evaluations."""

    name = "euler"
    summary = "Euler on the probability-flow ODE (N NFE)"

    def expected_nfe(self, path):
        return self.num_steps(path)

    def _run(self, path, denoise, z, target, noise, callback):
        grid = uniform_grid(self.num_steps(path))
        for i, (t, t_next) in enumerate(zip(grid[:-1], grid[1:])):
            z = z + (t_next - t) * predict(path, denoise, z, t, target, "v")
            notify(callback, step=i, t=t_next, z=z, xhat=None)
        return z


@register_sampler
@dataclasses.dataclass(frozen=True)
class Heun(_ODE):
    """JiT's sampler: Heun steps 1..N−1, a final Euler step (no evaluation at t = 1); 2N − 1 NFE."""

    name = "heun"
    summary = "Heun on the JiT grid, last step Euler (2N-1 NFE)"

    def expected_nfe(self, path):
        return 2 * self.num_steps(path) - 1

    def _run(self, path, denoise, z, target, noise, callback):
        grid = uniform_grid(self.num_steps(path))
        last = len(grid) - 2
        for i, (t, t_next) in enumerate(zip(grid[:-1], grid[1:])):
            h = t_next - t
            v = predict(path, denoise, z, t, target, "v")
            if i < last:
                v_next = predict(path, denoise, z + h * v, t_next, target, "v")
                v = 0.5 * (v + v_next)
            z = z + h * v
            notify(callback, step=i, t=t_next, z=z, xhat=None)
        return z
