"""``hdfm-bench diagnose RUN``: why a run samples what it samples (docs/methods.md §15).

At a grid of times (a path's own levels when it has them) the run's network sees held-out images
corrupted with fixed noise; we record its held-out loss in its target's own space next to the
linear-estimator floor of that target (:func:`methods.diagnostics.linear_floor`, moments from the
training split), and the pass-through fraction c of its ε̂ per octave band
(:func:`methods.diagnostics.pass_through`; for a target that cannot be turned into ε̂, such as IHDM's
residual, the target itself, whose noise part is −σε). Writes ``diagnose.json`` and ``diagnose.png``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from hdfm_bench.core.io import write_text
from hdfm_bench.methods import Objective, diagnostics, get_path
from hdfm_bench.tasks import get_task
from hdfm_bench.training.build import load_run

from .metrics.spectral import band_edges, band_masks

N_COVARIANCE = 10_000  # training images behind the data's mean and covariance


def time_grid(path, points: int) -> list[float]:
    """``points`` times inside (0, 1): evenly spread levels 1..K−1 (the trained ones) for a path with
    levels, else the midpoints of ``points`` equal cells."""
    if path.levels:
        ks = sorted({int(round(k)) for k in np.linspace(1, path.levels - 1, points)})
        return [float(path.t_of_level(k)) for k in reversed(ks)]
    return [(i + 0.5) / points for i in range(points)]


def _probe_kind(path, target: str) -> str:
    """ε when the path can turn the target into ε̂, else the target itself (IHDM's residual)."""
    ok = path.conversion_refusal(target, "eps") is None and path.refusal("eps") is None
    return "eps" if ok else target


@torch.no_grad()
def _predict(model, z: torch.Tensor, t: float, y: torch.Tensor | None, batch: int) -> torch.Tensor:
    out = []
    for i in range(0, len(z), batch):
        tt = torch.full((len(z[i:i + batch]),), t)
        out.append(model(z[i:i + batch], tt, None if y is None else y[i:i + batch]))
    return torch.cat(out)


def diagnose_run(run_dir: str | Path, *, n: int = 512, points: int = 10, ema: float | None = -1.0,
                 seed: int = 0, batch: int = 256, progress: bool = True) -> dict[str, Any]:
    """The measurements of docs/methods.md §15 for a run (``ema=-1``: its slowest EMA; None: raw).
    The raw weights are loaded first in any case: a checkpoint whose weights are not finite is refused."""
    cfg, _, state = load_run(run_dir)
    if ema == -1.0:
        ema = max(cfg.ema_decays) if cfg.ema_decays else None
    cfg, model, state = load_run(run_dir, ema)
    task = get_task(cfg.task, **cfg.task_params)
    path = get_path(cfg.path, **cfg.path_params)
    target = Objective(path, cfg.target or None, cfg.loss or None, cfg.norm or None).target
    kind = _probe_kind(path, target)
    held = "test" if "test" in task.splits else "train"
    x, y = (v[:n] for v in task.load(held))
    x64 = x.double()
    train = task.load("train")[0][:N_COVARIANCE]
    mean, cov = diagnostics.basis_moments(path.to_basis(train.double()).numpy())
    y = y if cfg.conditional and task.num_classes > 0 else None
    eps = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed)).double()
    edges, masks = band_edges(*task.shape[-2:]), band_masks(*task.shape[-2:])
    rows = []
    for t in tqdm(time_grid(path, points), desc="diagnose", disable=not progress):
        tt = torch.full((len(x),), t, dtype=torch.float64)
        z = path.corrupt(x64, eps, tt)
        raw = _predict(model, z.float(), t, y, batch).double()
        true = path.regression_target(target, x64, eps, tt, z)
        probe = raw if kind == target else path.convert(raw, target, kind, z, tt)
        _, _, b, sigma = diagnostics.gains(path, kind, t, tuple(task.shape))
        slope = np.ones_like(b) if kind == "eps" else b * sigma
        c = diagnostics.pass_through(path.to_basis(probe).numpy(), path.to_basis(eps).numpy(), slope, masks)
        loss = float(((raw - true) ** 2).mean())
        floor = diagnostics.linear_floor(path, target, t, mean, cov)
        level = int(path.level_of_t(np.array([t]))[0]) if path.levels else None
        rows.append({"t": t, "level": level, "loss": loss, "floor": floor,
                     "loss_over_floor": loss / floor if floor > 0 else float("nan"),
                     "pass_through": {f"{e['f_low']:g}-{e['f_high']:g}": v for e, v in zip(edges, c)}})
    return {"run_id": cfg.run_id(), "path": cfg.path, "target": target, "probe": kind,
            "checkpoint_step": int(state["step"]), "ema": ema, "n": len(x), "split": held, "seed": seed,
            "covariance": "full" if cov.ndim == 2 else "diagonal", "n_covariance": len(train), "points": rows}


def write_diagnosis(d: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """``diagnose.json`` and ``diagnose.png`` under ``out_dir``."""
    from .plots import plot_diagnosis

    out_dir = Path(out_dir)
    return {"json": write_text(out_dir / "diagnose.json", json.dumps(d, indent=2)),
            "png": plot_diagnosis(d, out_dir / "diagnose.png")}


def diagnosis_table(d: dict[str, Any]) -> str:
    """The measurements as a text table (one row per time, c per band from high to low frequency)."""
    from tabulate import tabulate

    bands = list(d["points"][0]["pass_through"])
    head = ["t", "level", "loss", "floor", "loss/floor"] + [f"c@{b}" for b in bands]
    body = [[p["t"], p["level"] if p["level"] is not None else "", p["loss"], p["floor"], p["loss_over_floor"],
             *p["pass_through"].values()] for p in d["points"]]
    return tabulate(body, head, floatfmt=".4g")


__all__ = ["diagnose_run", "write_diagnosis", "diagnosis_table", "time_grid"]
