"""Evaluate a trained run: sample, measure, stamp every number with its protocol, store the rows.

One call = one protocol: sampler, steps, counted NFE, CFG scale and interval, EMA, seed, n, the
feature extractor and its weights hash, the reference split and its hash, the resolution, the
checkpoint step and the run's budget. Rows go to the results store in long format.
"""
from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Sequence

import torch

from .sample import generate


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] floats → uint8 0..255 (the task mapping inverted)."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def evaluate_run(run_dir: str | Path, *, method: str | None = None, sampler: str | None = None,
                 steps: int | None = None, cfg_scale: float = 1.0,
                 cfg_interval: Sequence[float] = (0.1, 1.0), ema: float | None = None, n: int = 500,
                 seed: int = 0, extractor: str | None = None, reference_split: str | None = None,
                 trajectory_n: int = 100, kid_subset_size: int | None = None,
                 progress: bool = False, sampler_params: dict | None = None) -> tuple[list[dict], dict]:
    """Sample n images from a run and return (rows, generated) — rows protocol-stamped."""
    from tasks import get_task

    from .metrics import compute_metrics, spectral_ratio, trajectory_ratio
    from .metrics.fidelity import classifier_accuracy

    states, times = [], []

    def keep(step, t, z, **_):
        states.append(z[:trajectory_n].clone())
        times.append(float(t))

    out = generate(run_dir, sampler=sampler, steps=steps, cfg_scale=cfg_scale, cfg_interval=cfg_interval,
                   ema=ema, n=n, seed=seed, progress=progress, callback=keep, sampler_params=sampler_params)
    cfg, n_params = out["config"], out["parameters"]
    task = get_task(cfg.task, **cfg.task_params)
    extractor = extractor or task.protocol["extractor"]
    reference_split = reference_split or task.protocol.get("reference_split", "test")
    fake = to_uint8(out["samples"])
    kid_subset = kid_subset_size or min(1000, n)
    fid = compute_metrics(f"{cfg.task}:{reference_split}", fake, extractor=extractor,
                          metrics=("fid", "kid", "prc"), kid_subset_size=kid_subset)
    x_ref, y_ref = task.load(reference_split)
    ref_u8 = task.to_uint8(x_ref)
    spec = spectral_ratio(fake, ref_u8)
    states = [out["z0"][:trajectory_n]] + states
    times = [0.0] + times
    traj = trajectory_ratio([s.clamp(-1, 1) for s in states], times, ref_u8[: max(1000, trajectory_n)])

    rec_budget = {"images_seen": cfg.steps * cfg.batch_size, "steps": cfg.steps, "batch_size": cfg.batch_size,
                  "parameters": n_params}
    p = out["protocol"]
    protocol = {"task": cfg.task, "extractor": extractor, "extractor_hash": fid.get("extractor_hash"),
                "n_gen": n, "n_ref": fid.get("n_real"), "reference_split": reference_split,
                "reference_hash": fid.get("reference_hash"), "resolution": list(task.shape[-2:]),
                "sampler": p["sampler"], "sampler_params": p["sampler_params"], "steps": p["steps"],
                "nfe": p["nfe"], "cfg_scale": cfg_scale,
                "cfg_interval": list(cfg_interval), "ema": ema, "seed": seed, "kid_subset_size": kid_subset,
                "checkpoint_step": p["checkpoint_step"], "budget": rec_budget}
    base = {"run_id": cfg.run_id(), "checkpoint_step": p["checkpoint_step"], "method": method or cfg.path,
            "path": cfg.path, "target": p["target"], "task": cfg.task,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    rows = [{**base, "metric": m, "value": float(fid[k]), "protocol": protocol}
            for m, k in (("fid", "fid"), ("kid", "kid_mean"), ("precision", "precision"), ("recall", "recall"))]
    if out["labels"] is not None:
        acc = classifier_accuracy(fake, out["labels"], extractor)
        rows.append({**base, "metric": "class_accuracy", "value": float(acc), "protocol": protocol})
    rows.append({**base, "metric": "r_hf", "value": float(spec["r_hf"]), "protocol": protocol})
    rows.append({**base, "metric": "lsd", "value": float(spec["lsd"]), "protocol": protocol})
    for band in spec["bands"]:
        rows.append({**base, "metric": f"band_ratio@{band['f_low']:g}-{band['f_high']:g}",
                     "value": float(band["ratio"]), "protocol": protocol})
    for point in traj:
        rows.append({**base, "metric": "r_hf_trajectory", "value": float(point["r_hf"]),
                     "protocol": {**protocol, "n_gen": len(states[0]), "t": point["t"]}})
    return rows, out
