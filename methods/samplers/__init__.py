"""The samplers, generic ODE / posterior ones and the method-specific ones, each registered by
``@register_sampler`` on its class (a user's sampler registers the same way, ``hdfm_bench.register_sampler``)."""
from __future__ import annotations

from ..paths.base import ConfigError

# the built-ins, imported for their registration, in the order ``hdfm-bench list`` shows them
# isort: off
from . import ode, posterior, hdfm, discrete  # noqa: F401
# isort: on
from .base import SAMPLERS, Sampler, SampleResult, register_sampler


def list_samplers() -> list[str]:
    """Names of the registered samplers."""
    return list(SAMPLERS)


def get_sampler(name: str, **params) -> Sampler:
    """The sampler registered as ``name`` with validated parameters (e.g. steps=50)."""
    cls = SAMPLERS.lookup(name)
    known = [p["name"] for p in cls.parameters()]
    for key in params:
        if key not in known:
            raise ConfigError(f"sampler '{name}' has no parameter '{key}'; parameters: {', '.join(known)}")
    return cls(**params)


__all__ = ["SAMPLERS", "Sampler", "SampleResult", "get_sampler", "list_samplers", "register_sampler"]
