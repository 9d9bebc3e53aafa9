"""Drawing samples from a trained run: its sampler, guidance, EMA weights and seed."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from hdfm_bench.methods import Objective, get_path, get_sampler, recipe
from hdfm_bench.tasks import get_task
from hdfm_bench.training import load_run

from .guidance import Guided, class_labels
from .settings import SamplingSettings


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


def generate(run_dir: str | Path, settings: SamplingSettings | None = None, *, progress: bool = False,
             callback=None, **fields: Any) -> dict:
    """Draw ``settings.n`` samples from a run (``fields`` build the settings when none are given).

    Returns {"samples": (n, ...) float in [-1, 1], "labels", "protocol", "z0", "config", "parameters"}.
    """
    settings = settings or SamplingSettings(**fields)
    cfg, model, state = load_run(run_dir, settings.ema)
    task = get_task(cfg.task, **cfg.task_params)
    path = get_path(cfg.path, **cfg.path_params)
    target = Objective(path, cfg.target or None, cfg.loss or None, cfg.norm or None).target
    name, params = resolve_sampler(cfg.path, settings, **cfg.path_params)
    smp = get_sampler(name, **params)
    smp.check(path, target)
    n = settings.n
    conditional = cfg.conditional and task.num_classes > 0
    labels = class_labels(n, task.num_classes) if conditional else None
    guided = Guided(model, labels, task.num_classes if conditional else None, settings.cfg_scale,
                    settings.cfg_interval)
    g = torch.Generator().manual_seed(settings.seed)
    shape = (n, *task.shape)
    eps = torch.randn(shape, generator=g)
    data = None
    if path.data_prior:  # e.g. IHDM's blurred training images (docs/methods.md §2.9)
        x_train, _ = task.load("train")
        data = x_train[torch.randint(len(x_train), (n,), generator=g)]
    z0 = path.prior(eps, data)
    with tqdm(total=smp.num_steps(path), desc=f"sampling {name}", unit="step", disable=not progress,
              leave=False) as bar:
        def on_step(**state):
            bar.update(1)
            if callback is not None:
                callback(**state)

        if cfg.backend == "jax":  # the same sampler on jax arrays; samples cross to torch at the end
            from .jax import run_sampler

            samples, z0, res = run_sampler(smp, path, target, model, labels, guided.null, settings.cfg_scale,
                                           settings.cfg_interval, eps, data, settings.seed, callback=on_step)
        else:
            res = smp.sample(path, guided, z0, target, noise=lambda i: torch.randn(shape, generator=g),
                             callback=on_step)
            samples = res.samples
    samples = samples.clamp(-1, 1)
    protocol = {"run_id": cfg.run_id(), "checkpoint_step": int(state["step"]), "sampler": name,
                "sampler_params": dict(params), "steps": smp.num_steps(path), "nfe": res.nfe,
                "nfe_per_sample_branch": res.calls, "cfg_scale": settings.cfg_scale,
                "cfg_interval": list(settings.cfg_interval), "ema": settings.ema, "seed": settings.seed, "n": n,
                "target": target, "backend": cfg.backend}
    return {"samples": samples, "labels": labels, "protocol": protocol, "z0": z0, "config": cfg,
            "parameters": sum(q.numel() for q in model.parameters())}


__all__ = ["generate", "resolve_sampler"]
