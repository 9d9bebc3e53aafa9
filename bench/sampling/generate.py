"""Drawing samples from a trained run, batch by batch, with per-image seeds.

:class:`Generator` loads a run once and yields :class:`Batch` es of images ``start .. stop − 1``
of an evaluation; image i's prior noise, data-prior image, sampler noise and class label depend on
(seed, i) alone (``seeds``), so any split of the index range — batch sizes, processes, array
tasks — gives the same images. :func:`generate` is the one-call form (all n images in memory).
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from hdfm_bench.core.limits import check_batch
from hdfm_bench.methods import ConfigError, Objective, get_path, get_sampler, recipe
from hdfm_bench.tasks import get_task
from hdfm_bench.training import load_run
from hdfm_bench.training.build import compile_module, resolve_device

from .guidance import Guided
from .seeds import BLOCK, ImageGenerators, blocks, class_labels, seed_range
from .settings import MAX_SEED, SamplingSettings

#: the sampling seed whose image draws perturb z0 in stability probes (the last one; sweeps use low seeds)
PERTURB_SEED = MAX_SEED - 1


def resolve_sampler(path_name: str, settings: SamplingSettings, **path_params) -> tuple[str, dict]:
    """(sampler name, its parameters) for ``settings`` on a path: ``sampler=None`` is the recipe's
    sampler, with the recipe's budget unless ``steps`` is given."""
    params = dict(settings.sampler_params)
    if settings.sampler is None:
        r = recipe(path_name, **path_params)
        name, steps = r.sampler, settings.steps if settings.steps is not None else r.steps
    else:
        name, steps = settings.sampler, settings.steps
    if steps is not None:
        params["steps"] = steps
    return name, params


class PerturbedCalls:
    """A stability probe around a denoiser: every call sees z + δ·ξ, ξ a fresh standard normal draw
    from a generator seeded with ``seed`` (so a probe repeats exactly)."""

    def __init__(self, inner, delta: float, seed: int):
        self.inner, self.delta = inner, float(delta)
        self.evals_per_call = inner.evals_per_call
        self.gen = torch.Generator().manual_seed(int(seed))

    def __call__(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.inner(z + self.delta * torch.randn(z.shape, generator=self.gen).to(z), t)


@dataclasses.dataclass
class Batch:
    """Images ``indices`` of an evaluation: samples in [-1, 1], their labels (None when
    unconditional), the prior draws z0, and the sampler's counted NFE for this batch."""

    indices: list[int]
    samples: torch.Tensor
    labels: torch.Tensor | None
    z0: torch.Tensor
    nfe: int
    calls: int


class Generator:
    """A run loaded for sampling with ``settings``; :meth:`batches` yields images in index order."""

    def __init__(self, run_dir: str | Path, settings: SamplingSettings):
        self.settings = settings
        self.run_dir = Path(run_dir)
        self.config, self.model, state = load_run(run_dir, settings.ema, settings.checkpoint_step)
        cfg = self.config
        self.device = resolve_device("auto") if cfg.backend == "torch" else torch.device("cpu")
        self.model.to(self.device)
        if settings.compile and cfg.backend == "torch":
            self.model = compile_module(self.model, self.device)
        self.block = BLOCK[self.device.type]
        self.checkpoint_step = int(state["step"])
        self.task = get_task(cfg.task, **cfg.task_params)
        try:  # before any image is drawn: a batch the memory cannot hold is refused, not OOM-killed
            check_batch(min(settings.batch, settings.n), math.prod(self.task.shape), "--batch-size")
        except ValueError as err:
            raise ConfigError(str(err)) from None
        self.path = get_path(cfg.path, **cfg.path_params)
        self.target = Objective(self.path, cfg.target or None, cfg.loss or None, cfg.norm or None).target
        self.sampler_name, self.sampler_params = resolve_sampler(cfg.path, settings, **cfg.path_params)
        self.sampler = get_sampler(self.sampler_name, **self.sampler_params)
        self.sampler.check(self.path, self.target)
        self.conditional = cfg.conditional and self.task.num_classes > 0
        self.parameters = sum(q.numel() for q in self.model.parameters())
        self._train_x = None
        #: numerical-stability probes, not part of the protocol (bench/experiments/stability.py): add
        #: ``perturb`` × a fixed standard normal draw (independent of the image's own) to every prior z0, and
        #: ``perturb_calls`` × a fresh draw to the network's input at every call (as float rounding does)
        self.perturb = 0.0
        self.perturb_calls = 0.0

    @property
    def steps(self) -> int:
        return self.sampler.num_steps(self.path)

    def _data_prior(self, gens: ImageGenerators, labels: torch.Tensor | None) -> torch.Tensor:
        """Training images for a data-dependent prior (IHDM's B_K x + δε, docs/methods.md §4.4), one per
        image: any training image, or — for a class-conditional sample — one of the requested class.
        IHDM's σ is so small that the prior's coarse layout decides the digit (B_K keeps ~8 % of the
        lowest frequencies at σ_B,max = 20 px), so a prior of another class overrides the label."""
        if self._train_x is None:
            self._train_x, train_y = self.task.load("train")
            self._by_class = {int(c): torch.nonzero(train_y == c).flatten() for c in train_y.unique()}
        if labels is None:
            return self._train_x[gens.randint(len(self._train_x))]
        missing = sorted({int(y) for y in labels} - set(self._by_class))
        if missing:
            raise ConfigError(f"the training split has no image of class {missing[0]} for the data prior")
        pools = [self._by_class[int(y)] for y in labels]
        draws = gens.randint([len(pool) for pool in pools])
        return self._train_x[torch.stack([pool[d] for pool, d in zip(pools, draws)])]

    def batch(self, indices: list[int], callback: Callable[..., Any] | None = None) -> Batch:
        """Sample the images ``indices`` (one sampler call)."""
        s, shape = self.settings, tuple(self.task.shape)
        gens = ImageGenerators(s.seed, indices)  # per-image draws on the CPU, then moved: device-independent
        eps = gens.randn(shape)
        labels = class_labels(indices, self.task.num_classes) if self.conditional else None
        data = self._data_prior(gens, labels) if self.path.data_prior else None  # e.g. IHDM's blurred images (§2.9)
        null = self.task.num_classes if self.conditional else None
        if self.config.backend == "jax":  # the same sampler on jax arrays; samples cross to torch at the end
            from .jax import run_sampler

            samples, z0, res = run_sampler(self.sampler, self.path, self.target, self.model, labels, null,
                                           s.cfg_scale, s.cfg_interval, eps, data, s.seed, indices,
                                           callback=callback)
        else:
            dev = self.device
            z0 = self.path.prior(eps.to(dev), None if data is None else data.to(dev))
            if self.perturb:
                z0 = z0 + self.perturb * ImageGenerators(PERTURB_SEED, indices).randn(shape).to(dev)
            guided = Guided(self.model, None if labels is None else labels.to(dev), null, s.cfg_scale,
                            s.cfg_interval)
            if self.perturb_calls:
                guided = PerturbedCalls(guided, self.perturb_calls, seed=indices[0])
            res = self.sampler.sample(self.path, guided, z0, self.target,
                                      noise=lambda step: gens.randn(shape).to(dev), callback=callback)
            samples, z0 = res.samples.cpu(), z0.cpu()
        return Batch(list(indices), samples.clamp(-1, 1), labels, z0, res.nfe, res.calls)

    def batches(self, start: int = 0, stop: int | None = None, *, progress: bool = False,
                callback: Callable[..., Any] | None = None) -> Iterator[Batch]:
        """Images start..stop−1 (default: all n), about ``settings.batch`` at a time.

        The sampler runs on the aligned blocks of ``seeds.BLOCK[device]`` images that cover the range
        (images of a block outside the range are computed and dropped), so an image comes out the
        same whatever range, batch size or process asked for it. ``callback(batch_start=, **state)``
        sees every sampler step of every block, with the state of the block's images in the range."""
        stop = self.settings.n if stop is None else stop
        if not 0 <= start < stop <= self.settings.n:
            raise ValueError(f"image range [{start}, {stop}) is not inside [0, {self.settings.n})")
        pending: list[Batch] = []
        with tqdm(total=stop - start, desc=f"sampling {self.sampler_name}", unit="img", disable=not progress,
                  leave=False) as bar:
            for lo, hi in blocks(start, stop, self.block):
                keep = slice(max(start, lo) - lo, min(stop, hi) - lo)
                first = lo + keep.start
                cb = None if callback is None else \
                    (lambda first=first, keep=keep, **st: callback(batch_start=first, **{
                        k: (v[keep].cpu() if torch.is_tensor(v) and v.ndim and len(v) == self.block else v)
                        for k, v in st.items()}))
                out = self.batch(list(range(lo, hi)), callback=cb)
                part = Batch(out.indices[keep], out.samples[keep],
                             None if out.labels is None else out.labels[keep], out.z0[keep], out.nfe, out.calls)
                pending.append(part)
                bar.update(len(part.indices))
                if sum(len(b.indices) for b in pending) >= self.settings.batch or hi >= stop:
                    yield _join(pending)
                    pending = []

    def protocol(self, nfe: int, calls: int, start: int = 0, stop: int | None = None) -> dict:
        """What these samples were drawn with (stamped on sample files and, via evaluation, on rows)."""
        s = self.settings
        stop = s.n if stop is None else stop
        return {"run_id": self.config.run_id(), "checkpoint_step": self.checkpoint_step,
                "sampler": self.sampler_name, "sampler_params": dict(self.sampler_params), "steps": self.steps,
                "nfe": nfe, "nfe_per_sample_branch": calls, "cfg_scale": s.cfg_scale,
                "cfg_interval": list(s.cfg_interval), "ema": s.ema, "seed": s.seed, "n": s.n,
                "image_seeds": seed_range(s.seed, start, stop), "block": self.block, "target": self.target,
                "backend": self.config.backend}


def _join(parts: list[Batch]) -> Batch:
    if len(parts) == 1:
        return parts[0]
    labels = None if parts[0].labels is None else torch.cat([b.labels for b in parts])
    return Batch([i for b in parts for i in b.indices], torch.cat([b.samples for b in parts]), labels,
                 torch.cat([b.z0 for b in parts]), parts[0].nfe, parts[0].calls)


def generate(run_dir: str | Path, settings: SamplingSettings | None = None, *, progress: bool = False,
             callback=None, **fields: Any) -> dict:
    """Draw ``settings.n`` samples from a run (``fields`` build the settings when none are given).

    Returns {"samples": (n, ...) float in [-1, 1], "labels", "protocol", "z0", "config", "parameters"};
    ``callback`` sees each sampler step of each batch (``batch_start`` names the batch).
    """
    settings = settings or SamplingSettings(**fields)
    gen = Generator(run_dir, settings)
    parts = list(gen.batches(progress=progress, callback=callback))
    labels = torch.cat([b.labels for b in parts]) if gen.conditional else None
    return {"samples": torch.cat([b.samples for b in parts]), "labels": labels,
            "protocol": gen.protocol(parts[0].nfe, parts[0].calls), "z0": torch.cat([b.z0 for b in parts]),
            "config": gen.config, "parameters": gen.parameters}


__all__ = ["Batch", "Generator", "generate", "resolve_sampler", "PerturbedCalls", "PERTURB_SEED"]
