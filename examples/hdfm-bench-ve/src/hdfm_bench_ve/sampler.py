"""``ve_ddim``: the deterministic DDIM step of a variance-exploding path.

With x̂ the network's estimate at t_a, the point of the same noise at t_b is

    z_b = x̂ + (σ(t_b) / σ(t_a)) (z_a − x̂),

exact when x̂ = x (the noise ε̂ = (z_a − x̂)/σ(t_a) is carried over unchanged); one evaluation per step.
"""
from __future__ import annotations

import dataclasses

from hdfm_bench import register_sampler
from hdfm_bench.methods.samplers.base import Sampler, notify, predict, uniform_grid

from .path import VarianceExploding


@register_sampler
@dataclasses.dataclass(frozen=True)
class VEDDIM(Sampler):
    """z ← x̂ + σ(t_b)/σ(t_a) · (z − x̂) on the uniform grid; N evaluations."""

    name = "ve_ddim"
    summary = "DDIM on a variance-exploding path (N NFE; example plugin)"
    needs = "x"
    default_steps = 20

    def path_refusal(self, path):
        if not isinstance(path, VarianceExploding):
            return "it steps a variance-exploding path (ve)"
        return None

    def expected_nfe(self, path):
        return self.num_steps(path)

    def _run(self, path, denoise, z, target, noise, callback):
        grid = uniform_grid(self.num_steps(path))
        for i, (t, t_next) in enumerate(zip(grid[:-1], grid[1:])):
            xhat = predict(path, denoise, z, t, target, "x")
            z = xhat + (path.sigma_at(t_next) / path.sigma_at(t)) * (z - xhat)
            notify(callback, step=i, t=t_next, z=z, xhat=xhat)
        return z
