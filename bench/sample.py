"""Sampling from a trained run: classifier-free guidance with JiT's interval, EMA choice, grids."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import torch

from methods import get_path, get_sampler

from .io import atomic_path, write_text
from .train import load_run


class Guided:
    """Classifier-free guidance around a backbone (methods.md §2.8; JiT §3.5).

    out = uncond + w (cond − uncond) with w = ``scale`` where t_low < t < t_high (the lower test
    skipped when t_low = 0), else w = 1. Both branches run in one doubled batch at every call, as
    in the reference code, so each call counts 2 network evaluations (``evals_per_call``).
    Guiding the raw output guides every quantity affine in it (x̂, ε̂, v̂) identically.
    """

    def __init__(self, model: torch.nn.Module, y: torch.Tensor | None, null: int | None,
                 scale: float = 1.0, interval: Sequence[float] = (0.1, 1.0)):
        if scale != 1.0 and (y is None or null is None):
            raise ValueError("classifier-free guidance needs a class-conditional model and class labels")
        lo, hi = interval
        if not 0 <= lo < hi <= 1:
            raise ValueError(f"CFG interval must satisfy 0 <= low < high <= 1, got {list(interval)}")
        self.model, self.y, self.null, self.scale, self.interval = model, y, null, float(scale), (lo, hi)
        self.evals_per_call = 2 if scale != 1.0 else 1

    def weight(self, t: torch.Tensor) -> torch.Tensor:
        lo, hi = self.interval
        inside = t < hi
        if lo > 0:
            inside = inside & (t > lo)
        return torch.where(inside, torch.full_like(t, self.scale), torch.ones_like(t))

    @torch.no_grad()
    def __call__(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if self.evals_per_call == 1:
            return self.model(z, t, self.y)
        null = torch.full_like(self.y, self.null)
        out = self.model(torch.cat([z, z]), torch.cat([t, t]), torch.cat([self.y, null]))
        cond, uncond = out.chunk(2)
        w = self.weight(t).reshape((-1,) + (1,) * (z.ndim - 1))
        return uncond + w * (cond - uncond)


def class_labels(n: int, num_classes: int) -> torch.Tensor:
    """n labels cycling 0..K−1 (balanced, as JiT's 50-per-class evaluation)."""
    return torch.arange(n) % num_classes


def generate(run_dir: str | Path, *, sampler: str | None = None, steps: int | None = None,
             cfg_scale: float = 1.0, cfg_interval: Sequence[float] = (0.1, 1.0), ema: float | None = None,
             n: int = 100, seed: int = 0, sampler_params: dict | None = None, progress: bool = False,
             callback=None) -> dict:
    """Draw n samples from a run. Returns {"samples": (n, ...) float in [-1, 1], "labels", "protocol"}."""
    from tasks import get_task

    cfg, model, state = load_run(run_dir, ema)
    task = get_task(cfg.task, **cfg.task_params)
    path = get_path(cfg.path, **cfg.path_params)
    from methods import Objective

    target = Objective(path, cfg.target or None, cfg.loss or None, cfg.norm or None).target
    name = sampler or path.default_sampler
    params = dict(sampler_params or {})
    if steps is not None:
        params["steps"] = steps
    smp = get_sampler(name, **params)
    smp.check(path, target)
    conditional = cfg.conditional and task.num_classes > 0
    labels = class_labels(n, task.num_classes) if conditional else None
    guided = Guided(model, labels, task.num_classes if conditional else None, cfg_scale, cfg_interval)
    g = torch.Generator().manual_seed(seed)
    shape = (n, *task.shape)
    eps = torch.randn(shape, generator=g)
    data = None
    if path.data_prior:  # e.g. IHDM's blurred training images (methods.md §2.9)
        x_train, _ = task.load("train")
        data = x_train[torch.randint(len(x_train), (n,), generator=g)]
    z0 = path.prior(eps, data)
    from tqdm.auto import tqdm

    with tqdm(total=smp.num_steps(path), desc=f"sampling {name}", unit="step", disable=not progress,
              leave=False) as bar:
        def on_step(**state):
            bar.update(1)
            if callback is not None:
                callback(**state)

        if cfg.backend == "jax":  # the same sampler on jax arrays; samples cross to torch at the end
            from .jax.sample import run_sampler

            samples, z0, res = run_sampler(smp, path, target, model, labels, guided.null, cfg_scale, cfg_interval,
                                           eps, data, seed, callback=on_step)
        else:
            res = smp.sample(path, guided, z0, target, noise=lambda i: torch.randn(shape, generator=g),
                             callback=on_step)
            samples = res.samples
    samples = samples.clamp(-1, 1)
    protocol = {"run_id": cfg.run_id(), "checkpoint_step": int(state["step"]), "sampler": name,
                "sampler_params": {k: v for k, v in params.items()}, "steps": smp.num_steps(path),
                "nfe": res.nfe, "nfe_per_sample_branch": res.calls, "cfg_scale": cfg_scale,
                "cfg_interval": list(cfg_interval), "ema": ema, "seed": seed, "n": n,
                "target": target, "backend": cfg.backend}
    return {"samples": samples, "labels": labels, "protocol": protocol, "z0": z0, "config": cfg,
            "parameters": sum(q.numel() for q in model.parameters())}


def write_grid(samples: torch.Tensor, dest: str | Path, nrow: int = 10) -> Path:
    """Save a PNG grid of images in [-1, 1] (torchvision's make_grid), atomically."""
    from torchvision.utils import save_image

    with atomic_path(dest) as tmp:
        save_image((samples + 1) / 2, tmp, nrow=nrow, padding=1, pad_value=1.0, format="png")
    return Path(dest)


def write_samples(result: dict, dest_stem: str | Path) -> dict[str, Path]:
    """``<stem>.png`` (grid), ``<stem>.pt`` (uint8 samples + labels), ``<stem>.json`` (protocol)."""
    stem = Path(dest_stem)
    named = {ext: stem.parent / f"{stem.name}.{ext}" for ext in ("pt", "png", "json")}  # stems may hold dots
    u8 = ((result["samples"] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    with atomic_path(named["pt"]) as tmp:
        torch.save({"samples": u8, "labels": result["labels"]}, tmp)
    grid = write_grid(result["samples"], named["png"])
    meta = write_text(named["json"], json.dumps(result["protocol"], indent=2))
    return {"grid": grid, "samples": named["pt"], "protocol": meta}
