"""Evaluate a trained run: sample, measure, stamp every number with its protocol, store the rows.

One evaluation = one protocol (:class:`protocol.EvalSettings`). The n images are generated in
batches with per-image seeds and measured as they come: their features (:mod:`metrics.features`),
their DCT power (the spectral ratio), their class accuracy, and the sampler state along the way
for the first ``trajectory_n`` images — the images themselves are never held together. The work
can be split into shards (image ranges): each shard's measurements are written to a shard file
atomically, and :func:`merge_shards` computes the metrics once every shard exists. Because every
image depends on (seed, index) alone, the numbers do not depend on batch size or shard count.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import sys
from pathlib import Path
from typing import Any

import torch

from hdfm_bench.core import plugins
from hdfm_bench.core.config import RunConfig
from hdfm_bench.core.io import write_with
from hdfm_bench.core.messages import one_line
from hdfm_bench.sampling.generate import Generator
from hdfm_bench.sampling.output import SampleWriter
from hdfm_bench.tasks import unit_to_u8
from hdfm_bench.training import TrainLog

from .metrics.errors import MetricError
from .metrics.features import METRICS, Extractor, Features, check_metrics, metrics_from_features
from .metrics.fidelity import Accuracy
from .metrics.reference import Reference
from .metrics.spectral import Spectrum, trajectory_ratio
from .protocol import EvalSettings, row_protocol

SHARD_FORMAT = "hdfm-bench-shard/1"
TRAJECTORY_N = 100


@dataclasses.dataclass
class Part:
    """The measurements of images [start, stop) of one evaluation (a shard, or all of it)."""

    start: int
    stop: int
    features: Features
    spectrum: Spectrum
    correct: int
    counted: int
    z0: torch.Tensor  # prior draws of the images < trajectory_n in this part
    trajectory: list[tuple[float, torch.Tensor]]  # (t, sampler state) per step, same images
    sampled: dict[str, Any]

    def state(self, meta: dict[str, Any]) -> dict[str, Any]:
        spec = self.spectrum.state()
        total = None if spec["total"] is None else torch.from_numpy(spec["total"])
        return {"format": SHARD_FORMAT, **meta, "start": self.start, "stop": self.stop,
                "features": self.features.state(), "spectrum": {"n": spec["n"], "total": total},
                "correct": self.correct, "counted": self.counted, "z0": self.z0,
                "trajectory": [{"t": t, "z": z} for t, z in self.trajectory], "sampled": self.sampled}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Part:
        return cls(int(state["start"]), int(state["stop"]), Features.from_state(state["features"]),
                   Spectrum.from_state(state["spectrum"]), int(state["correct"]), int(state["counted"]), state["z0"],
                   [(float(p["t"]), p["z"]) for p in state["trajectory"]], state["sampled"])


class Evaluation:
    """One evaluation of one run: the run, the settings, the extractor and the reference, all resolved
    and checked before any image is generated."""

    def __init__(self, run_dir: str | Path, settings: EvalSettings, *, trajectory_n: int = TRAJECTORY_N) -> None:
        self.settings, self.trajectory_n = settings, trajectory_n
        self.gen = Generator(run_dir, settings.sampling())
        cfg, task = self.gen.config, self.gen.task
        if not task.is_image:
            raise MetricError(f"task '{cfg.task}' holds vectors, not images: image metrics do not apply")
        self.extractor_name = settings.extractor or task.protocol["extractor"]
        self.reference_split = settings.reference_split or task.protocol.get("reference_split", "test")
        if self.reference_split not in task.splits:
            raise MetricError(f"task '{cfg.task}' has no split '{self.reference_split}'; "
                              f"splits: {', '.join(task.splits)}")
        self.extractor = Extractor(self.extractor_name)
        self.extractor.check_shape(task.shape, f"task '{cfg.task}'")
        # the run's own data: its task with the parameters it was trained with, not the task's defaults
        self.reference = Reference.load(settings.reference, self.extractor) if settings.reference else \
            Reference.from_task(task, self.reference_split, self.extractor)
        self.reference.check_images(tuple(task.shape))
        self.kid_subset = settings.kid_subset_size or min(1000, settings.n)
        needs_features = [m for m in check_metrics(settings.metrics) if METRICS[m].needs_features]
        if needs_features and self.reference.features is None:  # refused before any image is sampled
            raise MetricError(f"KID and precision/recall need the reference's features, but {self.reference.name} "
                              "holds only statistics (mu, sigma); ask for FID alone (--metrics fid)")
        self.accuracy = Accuracy(self.extractor_name) if self.gen.conditional and \
            self.extractor.info["task"] is not None else None
        self.key = settings.key(cfg.run_id(), self.gen.checkpoint_step)
        self.kept: dict[str, Any] | None = None

    # ---- measuring ----
    def measure(self, start: int, stop: int, *, progress: bool = False, writer: SampleWriter | None = None,
                keep: int = 0) -> Part:
        """Generate images [start, stop) batch by batch and measure them; the first ``keep`` images of the
        evaluation (samples in [-1, 1], labels) are kept in ``self.kept`` (e.g. for a grid)."""
        # KID and precision/recall need the features themselves; FID alone only their running moments
        feats, spectrum = Features(keep=self.settings.metrics != ("fid",)), Spectrum()
        correct = counted = 0
        traj: dict[int, list] = {}
        z0s: list[torch.Tensor] = []
        kept: list[tuple[torch.Tensor, torch.Tensor | None]] = []
        last = None

        def on_step(batch_start, step, t, z, **_):
            if batch_start < self.trajectory_n:
                traj.setdefault(step, [float(t), []])[1].append(z[:self.trajectory_n - batch_start].clone())

        for batch in self.gen.batches(start, stop, progress=progress, callback=on_step):
            u8 = unit_to_u8(batch.samples)
            feats.add(self.extractor.features(u8))
            spectrum.add(u8)
            if self.accuracy is not None:
                correct += self.accuracy.add(u8, batch.labels)
                counted += len(u8)
            if batch.indices[0] < self.trajectory_n:
                z0s.append(batch.z0[:self.trajectory_n - batch.indices[0]])
            if writer is not None:
                writer.add(u8, batch.labels, batch.indices)
            if batch.indices[0] < keep:
                k = keep - batch.indices[0]
                kept.append((batch.samples[:k], None if batch.labels is None else batch.labels[:k]))
            last = batch
        trajectory = [(t, torch.cat(zs)) for _, (t, zs) in sorted(traj.items())]
        z0 = torch.cat(z0s) if z0s else torch.zeros(0)
        if kept:
            labels = None if kept[0][1] is None else torch.cat([y for _, y in kept])
            self.kept = {"samples": torch.cat([x for x, _ in kept]), "labels": labels}
        return Part(start, stop, feats, spectrum, correct, counted, z0, trajectory,
                    self.gen.protocol(last.nfe, last.calls))

    def meta(self) -> dict[str, Any]:
        """What a shard file must agree on with its siblings."""
        s = self.settings
        return {"key": self.key, "run_id": self.gen.config.run_id(), "checkpoint_step": self.gen.checkpoint_step,
                "n": s.n, "seed": s.seed, "shards": s.shards, "extractor": self.extractor_name,
                "extractor_hash": self.extractor.hash, "reference_hash": self.reference.hash}

    # ---- the rows ----
    def rows(self, parts: list[Part], *, method: str | None = None) -> list[dict]:
        """Merge the parts (in image order) into protocol-stamped rows."""
        parts = sorted(parts, key=lambda p: p.start)
        feats, spectrum = Features(keep=parts[0].features.keep), Spectrum()
        for p in parts:
            feats.extend(p.features)
            spectrum.extend(p.spectrum)
        s, cfg, task = self.settings, self.gen.config, self.gen.task
        if feats.n != s.n:
            raise MetricError(f"the parts hold {feats.n} images, the evaluation asks for {s.n}")
        sampled = {**parts[0].sampled, "image_seeds": _seed_span(parts)}
        budget = {"images_seen": cfg.steps * cfg.batch_size, "steps": cfg.steps, "batch_size": cfg.batch_size,
                  "parameters": self.gen.parameters, "backbone": cfg.backbone, "conditional": cfg.conditional}
        base = {"run_id": cfg.run_id(), "checkpoint_step": sampled["checkpoint_step"], "method": method or cfg.path,
                "path": cfg.path, "target": sampled["target"], "task": cfg.task,
                "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")}
        out = metric_rows(base, feats, spectrum, self.reference, s, sampled, budget, task=cfg.task,
                          resolution=list(task.shape[-2:]), reference_split=self.reference_split,
                          extractor=self.extractor, kid_subset=self.kid_subset,
                          correct=sum(p.correct for p in parts), counted=sum(p.counted for p in parts),
                          ref_spectrum=self._reference_spectrum())
        protocol = out[0]["protocol"]
        if cfg.plugins:  # the code of a path, backbone or task from outside the package (core.plugins)
            protocol["plugins"] = plugins.identity(cfg.plugins)
        z0s = [p.z0 for p in parts if len(p.z0)]  # none when trajectory_n = 0
        if z0s:
            z0 = torch.cat(z0s)
            steps = [(t, torch.cat([p.trajectory[i][1] for p in parts if p.trajectory]))
                     for i, (t, _) in enumerate(next(p for p in parts if p.trajectory).trajectory)]
            states, times = [z0] + [z for _, z in steps], [0.0] + [t for t, _ in steps]
            ref_u8 = self._reference_images()[: max(1000, self.trajectory_n)]
            for point in trajectory_ratio([x.clamp(-1, 1) for x in states], times, reference=ref_u8):
                out.append({**base, "metric": "r_hf_trajectory", "value": float(point["r_hf"]),
                            "protocol": {**protocol, "n_gen": len(z0), "t": point["t"]}})
        return out

    def _reference_images(self) -> torch.Tensor:
        return reference_images(self.gen.task, self.reference_split)

    def _reference_spectrum(self) -> Spectrum:
        return reference_spectrum(self.gen.task, self.reference_split)


def reference_images(task, split: str) -> torch.Tensor:
    """The uint8 images of ``task``'s ``split`` (the run's own task, with its parameters)."""
    x, _ = task.load(split)
    return task.to_uint8(x)


def reference_spectrum(task, split: str) -> Spectrum:
    """The mean DCT power of ``task``'s ``split``, the denominator of the spectral ratios."""
    ref = Spectrum()
    images = reference_images(task, split)
    for i in range(0, len(images), 2048):
        ref.add(images[i:i + 2048], name="reference")
    return ref


def metric_rows(base: dict[str, Any], feats: Features, spectrum: Spectrum, reference: Reference,
                settings: EvalSettings, sampled: dict[str, Any], budget: dict[str, Any], *, task: str,
                resolution: list[int], reference_split: str, extractor: Extractor, kid_subset: int,
                correct: int = 0, counted: int = 0, ref_spectrum: Spectrum | None = None) -> list[dict]:
    """The protocol-stamped rows of one measured image set — FID/KID/PR, class accuracy when counted,
    the spectral ratios when the reference's images are at hand — shared by ``evaluate`` (generated by a
    run) and ``score`` (images from anywhere), so the two give the same numbers for the same images."""
    measured = metrics_from_features(feats, reference, settings.metrics, kid_subset)
    info = {"extractor_hash": extractor.hash, "n_real": reference.n, "reference_hash": reference.hash,
            "reference_sha256": reference.sha256}
    protocol = row_protocol(settings, sampled, info, task=task, resolution=resolution,
                            reference_split=reference.name if settings.reference else reference_split,
                            extractor=extractor.name, kid_subset_size=kid_subset, budget=budget)
    named = (("fid", "fid"), ("kid", "kid_mean"), ("precision", "precision"), ("recall", "recall"))
    out = [{**base, "metric": m, "value": measured[k], "protocol": protocol} for m, k in named if k in measured]
    if counted:
        out.append({**base, "metric": "class_accuracy", "value": correct / counted, "protocol": protocol})
    if ref_spectrum is not None:
        spec = spectrum.ratio(ref_spectrum)
        out.append({**base, "metric": "r_hf", "value": float(spec["r_hf"]), "protocol": protocol})
        out.append({**base, "metric": "lsd", "value": float(spec["lsd"]), "protocol": protocol})
        for band in spec["bands"]:
            out.append({**base, "metric": f"band_ratio@{band['f_low']:g}-{band['f_high']:g}",
                        "value": float(band["ratio"]), "protocol": protocol})
    return out


def _seed_span(parts: list[Part]) -> str:
    first = parts[0].sampled["image_seeds"].split("-")[0]
    last = parts[-1].sampled["image_seeds"].split("-")[1]
    return f"{first}-{last}"


def evaluate_run(run_dir: str | Path, settings: EvalSettings | None = None, *, method: str | None = None,
                 trajectory_n: int = TRAJECTORY_N, progress: bool = False, save_samples: str | Path | None = None,
                 shard_dir: str | Path | None = None, keep: int = 0, **fields: Any) -> tuple[list[dict], dict]:
    """Sample ``settings.n`` images from a run and measure them; returns (rows, info).

    ``fields`` build the :class:`EvalSettings` when none are given. With ``settings.shards > 1`` the
    shards are measured one after the other into ``shard_dir`` (default ``RUN/eval-shards``), each
    written as soon as it is done, so an interrupted evaluation resumes at the missing shards.
    ``save_samples`` also writes the images (``.npz``, ``.zip`` of PNGs, or a folder of PNGs); the first
    ``keep`` images (samples in [-1, 1] and labels) come back in info (unsharded evaluations)."""
    settings = settings or EvalSettings(**fields)
    if save_samples and settings.shards > 1:
        raise ValueError("--save-samples writes one file of all n images: evaluate with --shards 1 to save them")
    ev = Evaluation(run_dir, settings, trajectory_n=trajectory_n)
    writer = SampleWriter.open(save_samples, settings.n, tuple(ev.gen.task.shape)) if save_samples else None
    try:
        if settings.shards == 1:
            parts = [ev.measure(0, settings.n, progress=progress, writer=writer, keep=keep)]
        else:
            folder = Path(shard_dir) if shard_dir else Path(run_dir) / SHARDS_DIR
            for k in range(settings.shards):
                evaluate_shard(ev, k, folder, progress=progress, writer=writer)
            parts = load_shards(ev, folder)
        rows = ev.rows(parts, method=method)
        log_rows(run_dir, ev.gen.config, rows)
        if writer is not None:
            writer.close()
            writer = None
    finally:
        if writer is not None:
            writer.abort()
    return rows, {"config": ev.gen.config, "key": ev.key, "protocol": rows[0]["protocol"], **(ev.kept or {})}


# ---- shards ---------------------------------------------------------------------------------------------

SHARDS_DIR = "eval-shards"


def shard_file(folder: str | Path, key: str, shard: int, shards: int) -> Path:
    return Path(folder) / key / f"shard-{shard:04d}-of-{shards:04d}.pt"


def evaluate_shard(ev: Evaluation, shard: int, folder: str | Path, *, progress: bool = False,
                   writer: SampleWriter | None = None) -> Path:
    """Measure shard ``shard`` of ``ev`` into its shard file (atomically); a valid existing file is kept."""
    dest = shard_file(folder, ev.key, shard, ev.settings.shards)
    if dest.is_file():
        try:
            _read_shard(dest, ev.meta())
            return dest
        except MetricError:
            pass  # a stale or damaged file: measure the shard again
    start, stop = ev.settings.shard_range(shard)
    part = ev.measure(start, stop, progress=progress, writer=writer)
    state = part.state({**ev.meta(), "shard": shard})
    return write_with(dest, lambda tmp: torch.save(state, tmp))


def _read_shard(path: Path, meta: dict[str, Any]) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated or not a torch file
        raise MetricError(f"cannot read shard file {path}: {' '.join(str(err).split())[:200]}") from None
    if not isinstance(state, dict) or state.get("format") != SHARD_FORMAT:
        raise MetricError(f"{path} is not an hdfm-bench shard file")
    for k, v in meta.items():
        if state.get(k) != v:
            raise MetricError(f"{path} belongs to another evaluation ({k} = {state.get(k)!r}, expected {v!r})")
    return state


def missing_shards(ev: Evaluation, folder: str | Path) -> list[int]:
    """The shards of ``ev`` that have no valid shard file in ``folder``."""
    out = []
    for k in range(ev.settings.shards):
        try:
            _read_shard(shard_file(folder, ev.key, k, ev.settings.shards), ev.meta())
        except MetricError:
            out.append(k)
    return out


def load_shards(ev: Evaluation, folder: str | Path) -> list[Part]:
    """Every shard of ``ev``, checked: none missing, none twice, all of this evaluation."""
    folder = Path(folder) / ev.key
    shards = ev.settings.shards
    files = sorted(folder.glob("shard-*.pt")) if folder.is_dir() else []
    seen: dict[int, Path] = {}
    for f in files:
        state = _read_shard(f, ev.meta())
        k = int(state["shard"])
        if k in seen:
            raise MetricError(f"shard {k} of {shards} appears twice in {folder}: {seen[k].name} and {f.name}")
        if (int(state["start"]), int(state["stop"])) != ev.settings.shard_range(k):
            raise MetricError(f"{f} covers images [{state['start']}, {state['stop']}), not shard {k}'s range")
        seen[k] = f
    missing = [k for k in range(shards) if k not in seen]
    if missing:
        raise MetricError(f"shard(s) {', '.join(map(str, missing))} of {shards} missing in {folder}; nothing merged")
    return [Part.from_state(_read_shard(seen[k], ev.meta())) for k in range(shards)]


def merge_shards(run_dir: str | Path, settings: EvalSettings, folder: str | Path, *, method: str | None = None,
                 trajectory_n: int = TRAJECTORY_N) -> tuple[list[dict], str]:
    """The rows of a sharded evaluation whose shard files are all in ``folder``; (rows, eval key)."""
    ev = Evaluation(run_dir, settings, trajectory_n=trajectory_n)
    rows = ev.rows(load_shards(ev, folder), method=method)
    log_rows(run_dir, ev.gen.config, rows)
    return rows, ev.key


def log_rows(run_dir: str | Path, cfg: RunConfig, rows: list[dict]) -> None:
    """A checkpoint's metrics in the run's TensorBoard log (``RunConfig.tb``), at the checkpoint's step:
    ``eval/<metric>/<sampler>-nfe<N>-cfg<w>-ema<d>-n<n>``, one curve per sampling protocol (the rows
    along a sampling trajectory, one per t, are left to the store)."""
    if not cfg.tb or not rows:
        return
    try:
        log = TrainLog(run_dir)
    except OSError as err:  # e.g. a read-only run folder: the measurement itself must not be lost
        print(f"note: no TensorBoard events written for {run_dir}: {one_line(err)}", file=sys.stderr)
        return
    try:
        for r in rows:
            p = r["protocol"]
            if "t" in p:
                continue
            setting = f"{p['sampler']}-nfe{p['nfe']}-cfg{p['cfg_scale']:g}-ema{p['ema'] or 'raw'}-n{p['n_gen']}"
            log.scalars("eval", int(r["checkpoint_step"]), {f"{r['metric']}/{setting}": r["value"]})
    finally:
        log.close()


__all__ = ["Evaluation", "Part", "evaluate_run", "log_rows", "evaluate_shard", "merge_shards", "load_shards",
           "missing_shards", "shard_file", "SHARDS_DIR"]
