"""The evaluation protocol: the settings of one evaluation and the stamp every result row carries.

:class:`EvalSettings` extends the sampling settings with the measurement: feature extractor,
reference (a split of the task or a statistics file), metrics, KID subset size, and how many
shards the work is split into. :func:`row_protocol` builds the protocol stamp of a row —
extractor and its weights hash, n generated and reference, the reference and its hash, the
resolution, the sampler and its parameters, steps, counted NFE, CFG scale and interval, EMA,
seed and image-seed range, shard count, KID subset, checkpoint step and the run's budget — in
this one place.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from hdfm_bench.core.hashing import EVAL_KEY_DIGITS, short_hash
from hdfm_bench.evaluation.metrics.features import DEFAULT_METRICS, METRICS
from hdfm_bench.methods import ConfigError
from hdfm_bench.sampling.settings import NOT_IDENTITY, SamplingSettings

#: the metrics of one evaluation, in table order
TABLE_METRICS = ("fid", "kid", "precision", "recall", "class_accuracy", "r_hf", "lsd")
#: the feature metrics of an evaluation unless asked otherwise (their registry: metrics.features.METRICS)
FEATURE_METRICS = DEFAULT_METRICS
#: fields added after evaluation keys were first stored: part of a key only when not at their default,
#: so the keys of earlier evaluations stay valid
LATER_FIELDS = {"metrics": FEATURE_METRICS, "reference": None}
#: fields the evaluation key holds on its own (the checkpoint's step)
IN_KEY = ("checkpoint_step",)


@dataclasses.dataclass(frozen=True)
class EvalSettings(SamplingSettings):
    """Sampling settings plus the measurement.

    extractor: None → the task's protocol; reference_split: None → the task's; reference: a
    statistics file (.npz) used instead of a split; metrics: any of fid, kid, prc; kid_subset_size:
    None → min(1000, n); shards: how many pieces the n images are split into (the numbers do not
    depend on it); ``label`` names the setting in tables and is not part of its identity.
    """

    n: int = 500
    extractor: str | None = None
    reference_split: str | None = None
    kid_subset_size: int | None = None
    label: str = ""
    reference: str | None = None
    metrics: tuple = FEATURE_METRICS
    shards: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "metrics", tuple(self.metrics))
        unknown = [m for m in self.metrics if m not in METRICS]
        if unknown or not self.metrics:
            raise ConfigError(f"metrics must be some of {', '.join(METRICS)}, got {list(self.metrics)}")
        if isinstance(self.shards, bool) or not isinstance(self.shards, int) or self.shards < 1:
            raise ConfigError(f"shards must be an integer >= 1, got {self.shards!r}")
        if self.n % self.shards:
            raise ConfigError(f"n = {self.n} is not divisible into {self.shards} shards of equal size")
        if self.n < 2:
            raise ConfigError(f"n must be >= 2 to measure a distribution, got {self.n}")

    def identity(self) -> dict[str, Any]:
        """What makes two evaluations the same measurement (label, batch size and shards do not)."""
        out = {k: v for k, v in dataclasses.asdict(self).items() if k != "label" and k not in NOT_IDENTITY
               and k != "shards" and k not in IN_KEY}
        for k, default in LATER_FIELDS.items():
            if out[k] == default or (isinstance(default, tuple) and tuple(out[k]) == default):
                del out[k]
        return out

    def key(self, run_id: str, checkpoint_step: int) -> str:
        """The key of this evaluation of ``run_id`` (its rows in a store): at the settings' own
        ``checkpoint_step`` when they name one, else at ``checkpoint_step`` (the run's latest)."""
        step = self.checkpoint_step if self.checkpoint_step is not None else checkpoint_step
        return short_hash({"run": run_id, "step": step, **self.identity()}, EVAL_KEY_DIGITS)

    def sampling(self) -> SamplingSettings:
        """The sampling part of these settings."""
        return SamplingSettings(**{f.name: getattr(self, f.name) for f in dataclasses.fields(SamplingSettings)})

    def shard_range(self, shard: int) -> tuple[int, int]:
        """Images [start, stop) of shard ``shard`` (0-based) of ``shards`` equal shards."""
        if not 0 <= shard < self.shards:
            raise ConfigError(f"shard {shard} does not exist: shards are 0..{self.shards - 1}")
        size = self.n // self.shards
        return shard * size, (shard + 1) * size


def row_protocol(settings: EvalSettings, sampled: dict[str, Any], measured: dict[str, Any], *, task: str,
                 resolution: list[int], reference_split: str, extractor: str, kid_subset_size: int,
                 budget: dict[str, Any]) -> dict[str, Any]:
    """The protocol stamp of every row of one evaluation.

    ``sampled`` is the protocol the generator returned (sampler, steps, counted NFE, checkpoint,
    image seeds); ``measured`` what the metrics returned (extractor hash, n_real, reference hash,
    and, for a statistics file, its SHA-256)."""
    out = {"task": task, "extractor": extractor, "extractor_hash": measured.get("extractor_hash"),
           "n_gen": settings.n, "n_ref": measured.get("n_real"), "reference_split": reference_split,
           "reference_hash": measured.get("reference_hash"), "resolution": list(resolution),
           "sampler": sampled["sampler"], "sampler_params": sampled["sampler_params"], "steps": sampled["steps"],
           "nfe": sampled["nfe"], "cfg_scale": settings.cfg_scale, "cfg_interval": list(settings.cfg_interval),
           "ema": settings.ema, "seed": settings.seed, "image_seeds": sampled.get("image_seeds"),
           "block": sampled.get("block"), "shards": settings.shards, "kid_subset_size": kid_subset_size,
           "checkpoint_step": sampled["checkpoint_step"], "budget": budget}
    if measured.get("reference_sha256"):
        out["reference_sha256"] = measured["reference_sha256"]
    if tuple(settings.metrics) != FEATURE_METRICS:
        out["metrics"] = list(settings.metrics)
    return out


__all__ = ["EvalSettings", "row_protocol", "TABLE_METRICS", "FEATURE_METRICS"]
