"""Evaluate a trained run: sample, measure, stamp every number with its protocol, store the rows.

One call = one protocol: sampler, steps, counted NFE, CFG scale and interval, EMA, seed, n, the
feature extractor and its weights hash, the reference split and its hash, the resolution, the
checkpoint step and the run's budget. Rows go to the results store in long format.
"""
from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

from hdfm_bench.sampling.generate import generate
from hdfm_bench.tasks import get_task, unit_to_u8

from .metrics import compute_metrics, spectral_ratio, trajectory_ratio
from .metrics.fidelity import classifier_accuracy
from .protocol import EvalSettings, row_protocol


def evaluate_run(run_dir: str | Path, settings: EvalSettings | None = None, *, method: str | None = None,
                 trajectory_n: int = 100, progress: bool = False, **fields: Any) -> tuple[list[dict], dict]:
    """Sample ``settings.n`` images from a run and measure them; returns (rows, generated).

    ``fields`` build the :class:`EvalSettings` when none are given. Every row carries the full
    protocol stamp (:func:`protocol.row_protocol`)."""
    settings = settings or EvalSettings(**fields)
    states, times = [], []

    def keep(step, t, z, **_):
        states.append(z[:trajectory_n].clone())
        times.append(float(t))

    out = generate(run_dir, settings.sampling(), progress=progress, callback=keep)
    cfg, n_params, n = out["config"], out["parameters"], settings.n
    task = get_task(cfg.task, **cfg.task_params)
    extractor = settings.extractor or task.protocol["extractor"]
    reference_split = settings.reference_split or task.protocol.get("reference_split", "test")
    fake = unit_to_u8(out["samples"])
    kid_subset = settings.kid_subset_size or min(1000, n)
    fid = compute_metrics(generated=fake, reference=f"{cfg.task}:{reference_split}", extractor=extractor,
                          metrics=("fid", "kid", "prc"), kid_subset_size=kid_subset)
    x_ref, y_ref = task.load(reference_split)
    ref_u8 = task.to_uint8(x_ref)
    spec = spectral_ratio(generated=fake, reference=ref_u8)
    states = [out["z0"][:trajectory_n]] + states
    times = [0.0] + times
    traj = trajectory_ratio([s.clamp(-1, 1) for s in states], times, reference=ref_u8[: max(1000, trajectory_n)])

    rec_budget = {"images_seen": cfg.steps * cfg.batch_size, "steps": cfg.steps, "batch_size": cfg.batch_size,
                  "parameters": n_params}
    p = out["protocol"]
    protocol = row_protocol(settings, p, fid, task=cfg.task, resolution=list(task.shape[-2:]),
                            reference_split=reference_split, extractor=extractor, kid_subset_size=kid_subset,
                            budget=rec_budget)
    base = {"run_id": cfg.run_id(), "checkpoint_step": p["checkpoint_step"], "method": method or cfg.path,
            "path": cfg.path, "target": p["target"], "task": cfg.task,
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")}
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


__all__ = ["evaluate_run"]
