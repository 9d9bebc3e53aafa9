"""A backbone's parameters: presets merged with overrides, validated numbers, and the error type.

Numbers are read by the project's one value rule (``core.values.coerce``); the messages name the
backbone and the parameter.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from hdfm_bench.core.values import CoercionError, coerce


class BackboneError(ValueError):
    """A bad backbone request (unknown name, parameter, preset, shape or label); one-line message."""

    def __init__(self, message: str) -> None:
        # One line always: callers print it as-is (CLI "error: ..." convention).
        super().__init__(" ".join(str(message).split()))


def _jsonable(value: Any) -> Any:
    """Tuples/lists of numbers stay tuples (json.dumps writes them as lists); numbers stay numbers."""
    if isinstance(value, (list, tuple)):
        return tuple(_jsonable(v) for v in value)
    return value


#: parameters every backbone takes (validated here): ``time_scale``, the factor on t before the sinusoidal
#: time embedding (1000: DDPM's integer timesteps; K: IHDM's integer levels, layers.TimestepEmbedder)
COMMON: dict[str, Any] = {"time_scale": 1000.0}


def resolve_params(backbone: str, presets: Mapping[str, Mapping[str, Any]], size: str,
                   overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Preset ``size`` (plus :data:`COMMON`) merged with ``overrides``; unknown preset or parameter ->
    BackboneError. Every preset lists every parameter, so the keys of any preset are the allowed names.
    """
    if size not in presets:
        raise BackboneError(f"unknown size {size!r} for backbone {backbone!r}; known: {', '.join(presets)}")
    params = {**presets[size], **COMMON}
    unknown = sorted(set(overrides) - set(params))
    if unknown:
        raise BackboneError(f"unknown parameter(s) {', '.join(map(repr, unknown))} for backbone "
                            f"{backbone!r}; known: size, {', '.join(params)}")
    params.update(overrides)
    params["time_scale"] = as_float(backbone, "time_scale", params["time_scale"], lo=1e-6)
    return {k: _jsonable(v) for k, v in params.items()}


def as_int(backbone: str, name: str, value: Any, minimum: int = 0) -> int:
    """Validated integer parameter (bools refused, ``minimum`` enforced)."""
    try:
        number = coerce(value, int)
    except CoercionError:
        number = None
    if number is None or number < minimum:
        raise BackboneError(f"{backbone}: parameter {name!r} must be an integer >= {minimum}, got {value!r}")
    return number


def as_float(backbone: str, name: str, value: Any, lo: float = 0.0, hi: float = math.inf) -> float:
    """Validated float parameter in [lo, hi]."""
    try:
        number = coerce(value, float)
    except CoercionError:
        number = None
    if number is None or not lo <= number <= hi:
        raise BackboneError(f"{backbone}: parameter {name!r} must be a number in [{lo}, {hi}], got {value!r}")
    return number


__all__ = ["BackboneError", "COMMON", "resolve_params", "as_int", "as_float"]
