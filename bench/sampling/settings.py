"""The sampling settings of one call — the protocol object every sampling and evaluation shares.

Built once (from the CLI, a sweep spec or the Python API), validated here, and stamped on every
sample file and result row. ``sampler = None`` means the method's recipe (its sampler at its own
budget; docs/methods.md §2.10), ``steps = None`` the sampler's own number of steps.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

from hdfm_bench.methods import ConfigError

#: JiT's guidance interval: guide only where 0.1 < t < 1 (docs/methods.md §2.8)
DEFAULT_CFG_INTERVAL = (0.1, 1.0)


@dataclasses.dataclass(frozen=True)
class SamplingSettings:
    """Which sampler, how many steps, guidance, weights, seed and number of images."""

    sampler: str | None = None
    steps: int | None = None
    cfg_scale: float = 1.0
    ema: float | None = None
    seed: int = 0
    n: int = 100
    cfg_interval: tuple = DEFAULT_CFG_INTERVAL
    sampler_params: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)
        set_("cfg_interval", tuple(float(v) for v in self.cfg_interval))
        set_("sampler_params", dict(self.sampler_params or {}))
        for name in ("cfg_scale", "ema"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
                raise ConfigError(f"{name.replace('_', '-')} must be a finite number, got {v!r}")
        if self.ema is not None and not 0 < self.ema < 1:
            raise ConfigError(f"ema must be a decay in (0, 1) or none, got {self.ema!r}")
        lo, hi = self.cfg_interval if len(self.cfg_interval) == 2 else (math.nan, math.nan)
        if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo < hi <= 1):
            raise ConfigError(f"cfg-interval must satisfy 0 <= low < high <= 1, got {list(self.cfg_interval)}")
        for name, lowest in (("n", 1), ("steps", 1), ("seed", 0)):
            v = getattr(self, name)
            if v is None and name == "steps":
                continue
            if isinstance(v, bool) or not isinstance(v, int) or v < lowest:
                raise ConfigError(f"{name} must be an integer >= {lowest}, got {v!r}")
        for k, v in self.sampler_params.items():
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"sampler parameter {k} must be finite, got {v!r}")

    def replace(self, **changes: Any) -> SamplingSettings:
        return dataclasses.replace(self, **changes)


__all__ = ["SamplingSettings", "DEFAULT_CFG_INTERVAL"]
