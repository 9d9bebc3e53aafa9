"""hdfm-bench math: spectral tools, corruption paths, targets, samplers (backend-neutral).

Convention: t ∈ [0, 1], t = 0 the source (noise / most corrupted), t = 1 the data;
data in [-1, 1]. See ../shared/docs/methods.md and the README's architecture section.
"""
from ._xp import validation
from .paths import PATHS, TARGETS, ConfigError, Path, get_path, list_paths
from .objective import Objective
from .samplers import SAMPLERS, SampleResult, get_sampler, list_samplers


def list_targets() -> list[str]:
    """Names of the prediction targets (x, eps, v and IHDM's prev_mean)."""
    return list(TARGETS)


__all__ = [
    "PATHS", "TARGETS", "SAMPLERS", "ConfigError", "Path", "Objective", "SampleResult",
    "get_path", "list_paths", "list_targets", "get_sampler", "list_samplers", "validation",
]
