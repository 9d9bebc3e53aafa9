"""Score images from any model under this project's protocol (``hdfm-bench score``, issue 27).

The images (:mod:`image_sets`: a folder, a zip, an ADM ``.npz``) are measured exactly as ``evaluate``
measures a run's samples — the same extractor, reference, metrics and spectral ratios, through
:func:`evaluate.metric_rows` — so the rows of a model trained elsewhere sit in one table with ours, and
the table refuses them where the protocol differs (extractor, reference, n, resolution). What a run's
row says about its sampler (sampler, steps, NFE, CFG, EMA, seeds, budget) is unknown here and is stamped
as such (:data:`EXTERNAL`); in its place the protocol names the images: their format, source name and
the SHA-256 of their decoded pixels, which is also the row's run id (``images-<hash>``).

Everything that can refuse is checked before the first feature is computed: the container, the image
shape against the extractor and the reference, the label range against the task's classes, the KID
subset against n.
"""
from __future__ import annotations

import datetime as _dt
import functools
import os
from pathlib import Path
from typing import Any

import torch

from hdfm_bench.core.hashing import EVAL_KEY_DIGITS, RUN_ID_DIGITS, short_hash
from hdfm_bench.core.io import write_with
from hdfm_bench.core.messages import one_line
from hdfm_bench.tasks import get_task
from hdfm_bench.tasks.errors import TaskError

from .evaluate import metric_rows, reference_spectrum
from .image_sets import ImageSet, set_sha256
from .metrics.errors import MetricError
from .metrics.features import METRICS, Extractor, Features, check_metrics
from .metrics.fidelity import Accuracy
from .metrics.reference import Reference
from .metrics.spectral import Spectrum
from .protocol import FEATURE_METRICS, EvalSettings

#: the protocol fields of a generated row that images from elsewhere cannot state
EXTERNAL = {"sampler": "external", "sampler_params": {}, "steps": None, "nfe": None, "cfg_scale": None,
            "cfg_interval": None, "ema": None, "seed": None, "image_seeds": None, "block": None,
            "checkpoint_step": None, "budget": None}
RUN_ID_PREFIX = "images-"
SHARD_FORMAT = "hdfm-bench-score-shard/1"


class Scoring:
    """One scoring: the images, the task, the extractor and the reference, resolved and checked."""

    def __init__(self, images: str | os.PathLike, *, task: str = "mnist", task_params: dict | None = None,
                 extractor: str | None = None, reference_split: str | None = None, reference: str | None = None,
                 metrics: tuple = FEATURE_METRICS, kid_subset_size: int | None = None) -> None:
        self.images = ImageSet.open(images)
        try:
            self.task = get_task(task, **(task_params or {}))
        except (TaskError, ValueError) as err:
            raise MetricError(str(err)) from None
        if not self.task.is_image:
            raise MetricError(f"task '{task}' holds vectors, not images")
        self.metrics = check_metrics(metrics)
        self.reference_split = reference_split or self.task.protocol.get("reference_split", "test")
        if reference is None and self.reference_split not in self.task.splits:
            raise MetricError(f"task '{task}' has no split '{self.reference_split}'; "
                              f"splits: {', '.join(self.task.splits)}")
        n, shape = self.images.n, tuple(self.images.shape)
        if reference is None and shape != tuple(self.task.shape):
            raise MetricError(f"{self.images.path} holds images {shape} (C, H, W) but {task}:{self.reference_split} "
                              f"holds {tuple(self.task.shape)}: another resolution or number of channels")
        if n < 2:
            raise MetricError(f"{self.images.path} holds {n} image(s); at least 2 are needed to measure a distribution")
        self.kid_subset = kid_subset_size or min(1000, n)
        if "kid" in self.metrics and self.kid_subset > n:
            raise MetricError(f"{self.images.path} holds {n} images, fewer than KID's subset size {self.kid_subset}")
        self.extractor = Extractor(extractor or self.task.protocol["extractor"])
        self.extractor.check_shape(shape, str(self.images.path))
        self.reference = Reference.load(reference, self.extractor) if reference else \
            Reference.from_task(self.task, self.reference_split, self.extractor)
        self.reference.check_images(shape)
        if any(METRICS[m].needs_features for m in self.metrics) and self.reference.features is None:
            raise MetricError(f"KID and precision/recall need the reference's features, but {self.reference.name} "
                              "holds only statistics (mu, sigma); ask for FID alone (--metrics fid)")
        self.accuracy = self._accuracy()

    def _accuracy(self) -> Accuracy | None:
        """The domain classifier when the images carry labels and the extractor has one."""
        labels = self.images.labels
        if labels is None or self.extractor.info["task"] is None:
            return None
        classes = self.task.num_classes
        if labels.max() >= classes:
            raise MetricError(f"{self.images.path}: label {int(labels.max())} is not a class of {self.task.name} "
                              f"(0..{classes - 1})")
        return Accuracy(self.extractor.name)

    def measure(self, start: int = 0, stop: int | None = None, *, batch_size: int = 256,
                progress: bool = False) -> dict[str, Any]:
        """Images [start, stop) measured batch by batch (flat memory): the state of one shard."""
        from tqdm.auto import tqdm

        stop = self.images.n if stop is None else stop
        feats, spectrum = Features(keep=self.metrics != ("fid",)), Spectrum()
        correct = counted = 0
        with tqdm(total=stop - start, desc="score", unit="img", disable=not progress, leave=False) as bar:
            for u8, labels, _ in self.images.batches(batch_size, start, stop):
                feats.add(self.extractor.features(u8))
                spectrum.add(u8)
                if self.accuracy is not None:
                    correct += self.accuracy.add(u8, labels)
                    counted += len(u8)
                bar.update(len(u8))
        spec = spectrum.state()
        return {"format": SHARD_FORMAT, "key": self._key, "start": start, "stop": stop, "features": feats.state(),
                "spectrum": {"n": spec["n"], "total": None if spec["total"] is None else
                             torch.from_numpy(spec["total"])},
                "correct": correct, "counted": counted, "digests": self.images.digests}

    @functools.cached_property
    def _key(self) -> str:
        """What makes two shard files parts of the same scoring: the images as opened (path, size, times) and
        the measurement; computed once (a folder's stamp stats every image)."""
        return short_hash({"images": str(self.images.path.resolve()), **self.images.describe(),
                           "stamp": self.images.stamp(), "extractor": self.extractor.name,
                           "extractor_hash": self.extractor.hash, "reference": self.reference.hash,
                           "metrics": list(self.metrics), "kid_subset": self.kid_subset}, EVAL_KEY_DIGITS)

    def rows(self, *, name: str | None = None, batch_size: int = 256, progress: bool = False,
             parts: list[dict] | None = None) -> list[dict]:
        """The protocol-stamped rows, from ``parts`` (shard states covering every image) or one pass."""
        parts = sorted(parts or [self.measure(batch_size=batch_size, progress=progress)], key=lambda p: p["start"])
        feats, spectrum = Features(keep=self.metrics != ("fid",)), Spectrum()
        for p in parts:
            feats.extend(Features.from_state(p["features"]))
            spectrum.extend(Spectrum.from_state(p["spectrum"]))
        sha = set_sha256(b"".join(p["digests"] for p in parts))
        settings = EvalSettings(n=self.images.n, extractor=self.extractor.name, reference_split=self.reference_split,
                                reference=None if self.reference.sha256 is None else self.reference.name,
                                metrics=self.metrics, kid_subset_size=self.kid_subset, shards=len(parts))
        base = {"run_id": RUN_ID_PREFIX + sha[:RUN_ID_DIGITS], "checkpoint_step": None,
                "method": name or self.images.path.stem, "path": "external", "target": "external",
                "task": self.task.name, "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")}
        ref_spec = None if self.reference.sha256 else reference_spectrum(self.task, self.reference_split)
        sampled = {"sampler": "external", "sampler_params": {}, "steps": None, "nfe": None, "checkpoint_step": None}
        out = metric_rows(base, feats, spectrum, self.reference, settings, sampled, None, task=self.task.name,
                          resolution=list(self.images.shape[-2:]), reference_split=self.reference_split,
                          extractor=self.extractor, kid_subset=self.kid_subset,
                          correct=sum(p["correct"] for p in parts), counted=sum(p["counted"] for p in parts),
                          ref_spectrum=ref_spec)
        out[0]["protocol"].update({**EXTERNAL, "images": {**self.images.describe(), "sha256": sha}})
        return out

    # ---- shards: image ranges measured apart (array tasks), merged once all exist ----
    def shard_range(self, shard: int, shards: int) -> tuple[int, int]:
        n = self.images.n
        if n % shards:
            raise MetricError(f"{n} images do not divide into {shards} shards of equal size")
        if not 0 <= shard < shards:
            raise MetricError(f"shard {shard} does not exist: shards are 0..{shards - 1}")
        return shard * n // shards, (shard + 1) * n // shards

    def shard_file(self, folder: str | os.PathLike, shard: int, shards: int) -> Path:
        return Path(folder) / self._key / f"shard-{shard:04d}-of-{shards:04d}.pt"

    def measure_shard(self, folder: str | os.PathLike, shard: int, shards: int, *, batch_size: int = 256,
                      progress: bool = False) -> Path:
        """Shard ``shard`` of ``shards`` measured into its file (atomically); a valid existing file is kept."""
        dest = self.shard_file(folder, shard, shards)
        if self._read_shard(dest, shard, shards, missing_ok=True) is not None:
            return dest
        state = {**self.measure(*self.shard_range(shard, shards), batch_size=batch_size, progress=progress),
                 "shard": shard, "shards": shards}
        return write_with(dest, lambda tmp: torch.save(state, tmp))

    def merge_shards(self, folder: str | os.PathLike, shards: int) -> list[dict]:
        """Every shard's state, checked (present, of this scoring, covering its range); refuses a missing one."""
        parts = [self._read_shard(self.shard_file(folder, k, shards), k, shards, missing_ok=True)
                 for k in range(shards)]
        missing = [k for k, p in enumerate(parts) if p is None]
        if missing:
            raise MetricError(f"shard(s) {', '.join(map(str, missing))} of {shards} missing in "
                              f"{Path(folder) / self._key}; nothing merged")
        return parts  # type: ignore[return-value]

    def _read_shard(self, path: Path, shard: int, shards: int, *, missing_ok: bool) -> dict | None:
        if not path.is_file():
            return None
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # truncated or not a torch file
            raise MetricError(f"cannot read shard file {path}: {one_line(err)}") from None
        ok = isinstance(state, dict) and state.get("format") == SHARD_FORMAT and state.get("key") == \
            self._key and (state.get("start"), state.get("stop")) == self.shard_range(shard, shards)
        if not ok:
            raise MetricError(f"{path} is not shard {shard} of {shards} of this scoring; delete it to measure again")
        return state


def score_images(images: str | os.PathLike, *, name: str | None = None, batch_size: int = 256,
                 progress: bool = False, **fields: Any) -> list[dict]:
    """The rows of :class:`Scoring` ``(images, **fields)``: every metric ``evaluate`` gives, for images
    written by any model (docs/methods.md §9 for the spectral ratios)."""
    return Scoring(images, **fields).rows(name=name, batch_size=batch_size, progress=progress)


__all__ = ["Scoring", "score_images", "EXTERNAL", "RUN_ID_PREFIX", "SHARD_FORMAT"]

