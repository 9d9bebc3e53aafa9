"""The evaluation protocol: the settings of one evaluation and the stamp every result row carries.

:class:`EvalSettings` extends the sampling settings with what the metrics need (feature
extractor, reference split, KID subset size). :func:`row_protocol` builds the protocol stamp of a
row — extractor and its weights hash, n generated and reference, the reference and its hash, the
resolution, the sampler and its parameters, steps, counted NFE, CFG scale and interval, EMA,
seed, KID subset, checkpoint step and the run's budget — in this one place.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from hdfm_bench.core.hashing import EVAL_KEY_DIGITS, short_hash
from hdfm_bench.sampling.settings import SamplingSettings

#: the metrics of one evaluation, in table order
TABLE_METRICS = ("fid", "kid", "precision", "recall", "class_accuracy", "r_hf", "lsd")


@dataclasses.dataclass(frozen=True)
class EvalSettings(SamplingSettings):
    """Sampling settings plus the measurement: extractor (None: the task's protocol), reference
    split (None: the task's), KID subset size (None: min(1000, n)); ``label`` names the setting in
    tables and is not part of its identity."""

    n: int = 500
    extractor: str | None = None
    reference_split: str | None = None
    kid_subset_size: int | None = None
    label: str = ""

    def identity(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "label"}

    def key(self, run_id: str, checkpoint_step: int) -> str:
        """The key of this evaluation of ``run_id`` at ``checkpoint_step`` (its rows in a store)."""
        return short_hash({"run": run_id, "step": checkpoint_step, **self.identity()}, EVAL_KEY_DIGITS)

    def sampling(self) -> SamplingSettings:
        """The sampling part of these settings."""
        return SamplingSettings(**{f.name: getattr(self, f.name) for f in dataclasses.fields(SamplingSettings)})


def row_protocol(settings: EvalSettings, sampled: dict[str, Any], measured: dict[str, Any], *, task: str,
                 resolution: list[int], reference_split: str, extractor: str, kid_subset_size: int,
                 budget: dict[str, Any]) -> dict[str, Any]:
    """The protocol stamp of every row of one evaluation.

    ``sampled`` is the protocol ``generate`` returned (sampler, steps, counted NFE, checkpoint);
    ``measured`` what the metrics returned (extractor hash, n_real, reference hash)."""
    return {"task": task, "extractor": extractor, "extractor_hash": measured.get("extractor_hash"),
            "n_gen": settings.n, "n_ref": measured.get("n_real"), "reference_split": reference_split,
            "reference_hash": measured.get("reference_hash"), "resolution": list(resolution),
            "sampler": sampled["sampler"], "sampler_params": sampled["sampler_params"], "steps": sampled["steps"],
            "nfe": sampled["nfe"], "cfg_scale": settings.cfg_scale, "cfg_interval": list(settings.cfg_interval),
            "ema": settings.ema, "seed": settings.seed, "kid_subset_size": kid_subset_size,
            "checkpoint_step": sampled["checkpoint_step"], "budget": budget}


__all__ = ["EvalSettings", "row_protocol", "TABLE_METRICS"]
