"""The registry of corruption paths: one file per path, one line per path below."""
from __future__ import annotations

import dataclasses
import math
import typing

from .base import TARGETS, ConfigError, Path
from .blurring_diffusion import BlurringDiffusion
from .cold_blur import ColdBlur
from .hdfm import HDFM
from .hdfm_code import HDFMCode
from .ihdm import IHDM
from .noise_fm import NoiseFM

PATHS: dict[str, type[Path]] = {
    "noise_fm": NoiseFM,
    "hdfm": HDFM,
    "hdfm_code": HDFMCode,
    "blurring_diffusion": BlurringDiffusion,
    "ihdm": IHDM,
    "cold_blur": ColdBlur,
}


def list_paths() -> list[str]:
    """Names of the registered paths."""
    return list(PATHS)


def _coerce(cls: type[Path], name: str, value):
    """Accept python values of the declared type (ints for floats; strings from a CLI); numbers finite."""
    value = _coerce_type(cls, name, value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"path '{cls.name}': parameter '{name}' must be a finite number, got {value}")
    return value


def _coerce_type(cls: type[Path], name: str, value):
    kind = typing.get_type_hints(cls)[name]
    if isinstance(value, str) and kind is not str:
        text = value.strip().lower()
        try:
            if kind is bool:
                if text not in ("true", "false", "1", "0"):
                    raise ValueError
                return text in ("true", "1")
            return kind(value)
        except ValueError:
            raise ConfigError(f"path '{cls.name}': parameter '{name}' expects {kind.__name__}, got '{value}'") from None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ConfigError(f"path '{cls.name}': parameter '{name}' expects {kind.__name__}, got {value!r}")
    return value


def get_path(name: str, **params) -> Path:
    """The path registered as ``name`` with validated parameters (defaults from the papers)."""
    if name not in PATHS:
        raise ConfigError(f"unknown path '{name}'; known: {', '.join(PATHS)}")
    cls = PATHS[name]
    known = [f.name for f in dataclasses.fields(cls)]
    for key in params:
        if key not in known:
            raise ConfigError(f"path '{name}' has no parameter '{key}'; parameters: {', '.join(known)}")
    return cls(**{k: _coerce(cls, k, v) for k, v in params.items()})


__all__ = ["PATHS", "Path", "ConfigError", "TARGETS", "get_path", "list_paths"]
