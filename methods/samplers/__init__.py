"""The registry of samplers: generic ODE / posterior samplers and the method-specific ones."""
from __future__ import annotations

from ..paths.base import ConfigError
from .base import Sampler, SampleResult
from .discrete import ColdAlg2, IHDMDelta
from .hdfm import HDFMAdaptive, HDFMExact
from .ode import Euler, Heun
from .posterior import Posterior

SAMPLERS: dict[str, type[Sampler]] = {
    "euler": Euler,
    "heun": Heun,
    "posterior": Posterior,
    "hdfm_adaptive": HDFMAdaptive,
    "hdfm_exact": HDFMExact,
    "ihdm_delta": IHDMDelta,
    "cold_alg2": ColdAlg2,
}


def list_samplers() -> list[str]:
    return list(SAMPLERS)


def get_sampler(name: str, **params) -> Sampler:
    """The sampler registered as ``name`` with validated parameters (e.g. steps=50)."""
    if name not in SAMPLERS:
        raise ConfigError(f"unknown sampler '{name}'; known: {', '.join(SAMPLERS)}")
    cls = SAMPLERS[name]
    known = [p["name"] for p in cls.parameters()]
    for key in params:
        if key not in known:
            raise ConfigError(f"sampler '{name}' has no parameter '{key}'; parameters: {', '.join(known)}")
    return cls(**params)


__all__ = ["SAMPLERS", "Sampler", "SampleResult", "get_sampler", "list_samplers"]
