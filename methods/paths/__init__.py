"""The corruption paths: one file per path, each registered by ``@register_path`` on its class.

A path of a user's own registers the same way from any module (``hdfm_bench.register_path``);
:func:`get_path` builds any registered path with validated parameters.
"""
from __future__ import annotations

import dataclasses
import typing

from hdfm_bench.core.overrides import non_finite
from hdfm_bench.core.values import CoercionError, coerce

# the built-ins, imported for their registration, in the order ``hdfm-bench list`` shows them
# isort: off
from . import noise_fm, hdfm, hdfm_code, blurring_diffusion, ihdm, cold_blur  # noqa: F401
# isort: on
from .base import PATHS, TARGETS, ConfigError, Path, register_path


def list_paths() -> list[str]:
    """Names of the registered paths."""
    return list(PATHS)


def _coerce(cls: type[Path], name: str, value):
    """A parameter as its declared type (core.values.coerce: ints for floats, text from a CLI); numbers finite."""
    kind = typing.get_type_hints(cls)[name]
    try:
        value = coerce(value, kind)
    except CoercionError:
        shown = f"'{value}'" if isinstance(value, str) else repr(value)
        raise ConfigError(f"path '{cls.name}': parameter '{name}' expects {kind.__name__}, got {shown}") from None
    if non_finite(value):
        raise ConfigError(f"path '{cls.name}': parameter '{name}' must be a finite number, got {value}")
    return value


def get_path(name: str, **params) -> Path:
    """The path registered as ``name`` with validated parameters (defaults from the papers)."""
    cls = PATHS.lookup(name)
    known = [f.name for f in dataclasses.fields(cls)]
    for key in params:
        if key not in known:
            raise ConfigError(f"path '{name}' has no parameter '{key}'; parameters: {', '.join(known)}")
    return cls(**{k: _coerce(cls, k, v) for k, v in params.items()})


__all__ = ["PATHS", "Path", "ConfigError", "TARGETS", "get_path", "list_paths", "register_path"]
