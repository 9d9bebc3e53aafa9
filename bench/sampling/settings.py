"""The sampling settings of one call — the protocol object every sampling and evaluation shares.

Built once (from the CLI, a sweep spec or the Python API), validated here, and stamped on every
sample file and result row. ``sampler = None`` means the method's recipe (its sampler at its own
budget; docs/methods.md §2.10), ``steps = None`` the sampler's own number of steps.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

from hdfm_bench.core.limits import check_sampler_steps
from hdfm_bench.methods import ConfigError

#: JiT's guidance interval: guide only where 0.1 < t < 1 (docs/methods.md §2.8)
DEFAULT_CFG_INTERVAL = (0.1, 1.0)
DEFAULT_BATCH_SIZE = 256
#: fields that change how the work is split or run, never which images come out (beyond float rounding)
NOT_IDENTITY = ("batch_size", "compile")
#: images per sampling seed: seed s owns the image seeds [s · 2²⁴, (s + 1) · 2²⁴). torch's CPU generator
#: keeps 32 bits of a seed, so image seeds stay below 2³² (256 seeds of 16.7 M images each); seed 0's
#: image i is generator seed i, as in EDM's per-image seeds (``seeds.image_seed``)
IMAGES_PER_SEED = 1 << 24
MAX_SEED = (1 << 32) // IMAGES_PER_SEED


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
    #: images handed on together (to the metrics, to sample files); the sampler itself runs on aligned
    #: blocks (``seeds.BLOCK``), so the images do not depend on it and it is not part of the protocol's
    #: identity. None: DEFAULT_BATCH_SIZE
    batch_size: int | None = None
    #: sample with the backbone under torch.compile (fused kernels; the same function)
    compile: bool = False
    #: the training step of the checkpoint to sample from (the latest or a kept copy); None: the latest
    checkpoint_step: int | None = None

    def __post_init__(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)
        set_("cfg_interval", tuple(float(v) for v in self.cfg_interval))
        set_("sampler_params", dict(self.sampler_params or {}))
        for name in ("cfg_scale", "ema"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
                raise ConfigError(f"{name.replace('_', '-')} must be a finite number, got {v!r}")
        if self.cfg_scale < 0:
            raise ConfigError(f"cfg-scale must be >= 0 (1 = no guidance, 0 = unconditional), got {self.cfg_scale!r}")
        if self.ema is not None and not 0 < self.ema < 1:
            raise ConfigError(f"ema must be a decay in (0, 1) or none, got {self.ema!r}")
        lo, hi = self.cfg_interval if len(self.cfg_interval) == 2 else (math.nan, math.nan)
        if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo < hi <= 1):
            raise ConfigError(f"cfg-interval must satisfy 0 <= low < high <= 1, got {list(self.cfg_interval)}")
        if isinstance(self.seed, int) and not isinstance(self.seed, bool) and self.seed >= MAX_SEED:
            raise ConfigError(f"seed must be below {MAX_SEED} (each seed owns {IMAGES_PER_SEED:,} image seeds), "
                              f"got {self.seed}")
        if isinstance(self.n, int) and self.n > IMAGES_PER_SEED:
            raise ConfigError(f"n must be at most {IMAGES_PER_SEED:,} per seed, got {self.n}")
        for name, lowest in (("n", 1), ("steps", 1), ("seed", 0), ("batch_size", 1), ("checkpoint_step", 1)):
            v = getattr(self, name)
            if v is None and name in ("steps", "batch_size", "checkpoint_step"):
                continue
            if isinstance(v, bool) or not isinstance(v, int) or v < lowest:
                raise ConfigError(f"{name} must be an integer >= {lowest}, got {v!r}")
        if self.steps is not None:
            try:
                check_sampler_steps(self.steps)
            except ValueError as err:
                raise ConfigError(str(err)) from None
        for k, v in self.sampler_params.items():
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"sampler parameter {k} must be finite, got {v!r}")

    def replace(self, **changes: Any) -> SamplingSettings:
        return dataclasses.replace(self, **changes)

    @property
    def batch(self) -> int:
        """Images per sampler call."""
        return self.batch_size or DEFAULT_BATCH_SIZE


__all__ = ["SamplingSettings", "DEFAULT_CFG_INTERVAL", "DEFAULT_BATCH_SIZE", "NOT_IDENTITY", "IMAGES_PER_SEED",
           "MAX_SEED"]
