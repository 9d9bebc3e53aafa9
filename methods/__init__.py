"""hdfm-bench math: spectral tools, corruption paths, targets, samplers, recipes (backend-neutral).

Convention: t ∈ [0, 1], t = 0 the source (noise / most corrupted), t = 1 the data; data in
[-1, 1]. The mathematics is written down in docs/methods.md; docstrings cite its sections (§).
This package imports nothing else of hdfm-bench but ``core`` (the registry and value rules, stdlib only).
"""
from ._xp import validation
from .objective import Objective
from .paths import PATHS, TARGETS, ConfigError, Path, get_path, list_paths, register_path
from .recipes import Recipe, list_recipes, recipe
from .samplers import SAMPLERS, SampleResult, get_sampler, list_samplers, register_sampler


def list_targets() -> list[str]:
    """Names of the prediction targets (x, eps, v and IHDM's prev_mean)."""
    return list(TARGETS)


__all__ = [
    "PATHS", "TARGETS", "SAMPLERS", "ConfigError", "Path", "Objective", "SampleResult", "Recipe",
    "get_path", "list_paths", "list_targets", "get_sampler", "list_samplers", "recipe", "list_recipes",
    "validation", "register_path", "register_sampler",
]
