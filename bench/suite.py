"""The default suite (``hdfm-bench run``): four corruption paths, one backbone, one budget, MNIST.

Every method is trained with the same ViT, batch, number of steps, optimiser, EMA and data order,
then sampled class-conditionally (10 per class) with its own published sampler; a grid per
method is written under results/suite/. ``--quick`` runs the same pipeline with a small budget.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from tqdm.auto import tqdm

from .config import RunConfig
from .io import write_text

METHODS: dict[str, dict] = {
    # JiT's recipe: x-prediction, v-loss, Heun; CFG with interval.
    "noise_fm": {"path": "noise_fm", "target": "x", "loss": "v"},
    # HDFM (exact path), x-prediction, v-loss, exact-β Heun.
    "hdfm": {"path": "hdfm", "target": "x", "loss": "v"},
    # Blurring diffusion: ε-prediction, ε-loss, ancestral posterior sampler.
    "blurring_diffusion": {"path": "blurring_diffusion", "target": "eps", "loss": "eps"},
    # IHDM with its MNIST configuration (K = 100, σ_B,max = 20 px), residual previous-level target.
    "ihdm": {"path": "ihdm", "path_params": {"K": 100, "sigma_blur_max": 20.0}, "target": "prev_mean",
             "loss": "prev_mean"},
}

# One budget for all: a ~0.5 M-parameter ViT (patch 4 → 7×7 tokens at 28×28).
BUDGET = {"task": "mnist", "backbone": "vit",
          "backbone_params": {"size": "tiny", "patch": 4},
          "batch_size": 128, "lr": 2e-3, "warmup": 50, "ema_decays": [0.99, 0.999],
          "label_dropout": 0.1, "seed": 0}
FULL = {"steps": 800, "checkpoint_every": 200}
QUICK = {"steps": 150, "checkpoint_every": 50}

SAMPLING = {
    "noise_fm": {"sampler": "heun", "steps": 20, "cfg_scale": 2.0},
    "hdfm": {"sampler": "hdfm_exact", "steps": 20, "cfg_scale": 2.0},
    "blurring_diffusion": {"sampler": "posterior", "steps": 50, "cfg_scale": 2.0},
    "ihdm": {"sampler": "ihdm_delta", "steps": None, "cfg_scale": 2.0},
}


def configs(quick: bool = False, out_dir: str = "runs", methods: list[str] | None = None) -> dict[str, RunConfig]:
    chosen = methods or list(METHODS)
    for m in chosen:
        if m not in METHODS:
            raise ValueError(f"unknown suite method '{m}'; known: {', '.join(METHODS)}")
    extra = QUICK if quick else FULL
    return {m: RunConfig.from_mapping({**BUDGET, **extra, **METHODS[m], "out_dir": out_dir}, source="suite")
            for m in chosen}


def run_suite(quick: bool = False, results: str | Path = "results/suite", out_dir: str = "runs",
              methods: list[str] | None = None, n_samples: int = 100) -> dict:
    """Train (or resume) and sample every method; write grids and a summary JSON."""
    from .sample import generate, write_samples
    from .train import train

    cfgs = configs(quick, out_dir, methods)
    results = Path(results) / ("quick" if quick else "")
    total = sum(c.steps for c in cfgs.values())
    summary = {"quick": quick, "budget": {**BUDGET, **(QUICK if quick else FULL)}, "methods": {}}
    t_start = time.perf_counter()
    done_steps = 0
    with tqdm(total=total, desc="suite: training", unit="step", dynamic_ncols=True) as bar:
        for name, cfg in cfgs.items():
            bar.set_description(f"suite: training {name}")
            t0 = time.perf_counter()
            res = train(cfg, progress=False, on_step=lambda s, loss: (bar.update(1), bar.set_postfix(loss=f"{loss:.4f}")))
            done_steps += cfg.steps
            bar.update(done_steps - bar.n)  # steps a resumed run did not redo
            t_train = time.perf_counter() - t0
            smp = SAMPLING[name]
            t1 = time.perf_counter()
            out = generate(res.run_dir, sampler=smp["sampler"], steps=smp["steps"], cfg_scale=smp["cfg_scale"],
                           ema=max(cfg.ema_decays), n=n_samples, seed=0)
            files = write_samples(out, results / name)
            t_sample = time.perf_counter() - t1
            summary["methods"][name] = {"run_dir": str(res.run_dir), "grid": str(files["grid"]),
                                        "objective": res.record.get("objective"),
                                        "final_loss": res.record.get("final_loss"),
                                        "parameters": res.record["budget"]["parameters"],
                                        "train_s": round(t_train, 1), "sample_s": round(t_sample, 1),
                                        "protocol": out["protocol"]}
            tqdm.write(f"[suite] {name}: trained in {t_train:.0f} s, sampled {n_samples} "
                       f"({out['protocol']['nfe']} NFE) in {t_sample:.0f} s -> {files['grid']}")
    summary["wall_time_s"] = round(time.perf_counter() - t_start, 1)
    write_text(results / "summary.json", json.dumps(summary, indent=2, default=str))
    return summary
