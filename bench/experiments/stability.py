"""Numerical stability of a sampler: does a 1e-6 change of its input change the images? (docs/stability.md)

For one run and one sampling setting, the same n images are drawn twice, the second time with the
prior z0 perturbed by δ = 1e-6 × an independent standard normal draw (``Generator.perturb``). A stable
sampler maps the two to the same images up to rounding; an unstable one amplifies δ into different
images. Reported: the share of uint8 pixels that differ, their mean absolute difference (grey levels),
the FID of both draws and their difference, against the seed noise of FID (its standard deviation over
``noise_seeds`` further sampling seeds, the same n). A second twin perturbs the network's input at
every call instead (``Generator.perturb_calls``), which is what different float rounding on two
machines does. The criterion of issue 17.3: |ΔFID| within the seed noise.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from hdfm_bench.core.io import write_text
from hdfm_bench.evaluation.evaluate import Evaluation
from hdfm_bench.evaluation.protocol import EvalSettings
from hdfm_bench.tasks import unit_to_u8

PERTURBATION = 1e-6
#: the rows probed: (label, path, target, sampler parameters), on the head-to-head's runs
PROBES = (
    ("noise FM · x-pred", "noise_fm", "x", {}),
    ("HDFM · x-pred", "hdfm", "x", {}),
    ("Blurring Diffusion · ε-pred, paper sampler", "blurring_diffusion", "eps", {}),
    ("Blurring Diffusion · ε-pred, x̂ clipped to [-1, 1]", "blurring_diffusion", "eps", {"clip_x": True}),
    ("Blurring Diffusion · ε-pred, dynamic thresholding (q = 0.995)", "blurring_diffusion", "eps",
     {"threshold": 0.995}),
    ("Blurring Diffusion · x-pred (x-loss)", "blurring_diffusion", "x", {}),
)


@dataclasses.dataclass
class Probe:
    """One row of the stability table: a run and the sampling settings to probe it with."""

    label: str
    run_dir: Path
    settings: EvalSettings


def _draw(ev: Evaluation, perturb: float, where: str = "z0") -> tuple[torch.Tensor, float]:
    """The n images (uint8) and their FID with the prior (``where="z0"``) or the network's input at every
    call (``"calls"``) perturbed by ``perturb`` × a standard normal draw."""
    attr = {"z0": "perturb", "calls": "perturb_calls"}[where]
    setattr(ev.gen, attr, perturb)
    try:
        part = ev.measure(0, ev.settings.n, keep=ev.settings.n)
    finally:
        setattr(ev.gen, attr, 0.0)
    fid = next(r["value"] for r in ev.rows([part]) if r["metric"] == "fid")
    return unit_to_u8(ev.kept["samples"]), float(fid)


#: the per-call perturbations swept: float32 rounding (~1e-7) is far below the first; bf16 (~4e-3)
#: and TF32 (~5e-4) rounding on a GPU sit between the last ones
CALL_DELTAS = (1e-6, 1e-4, 1e-3, 1e-2)


def measure(probe: Probe, perturb: float = PERTURBATION, noise_seeds: tuple[int, ...] = (2, 3, 4),
            call_deltas: tuple[float, ...] = CALL_DELTAS) -> dict:
    """Pixels and FID of the plain draw and of its perturbed twins — z0 perturbed once by ``perturb``,
    and the network's input perturbed at every call by each of ``call_deltas`` — and the seed noise of
    FID. ``stable``: both twins at ``perturb`` (z0 and every call) have their FID within the seed noise."""
    ev = Evaluation(probe.run_dir, probe.settings, trajectory_n=0)
    a, fid_a = _draw(ev, 0.0)
    fids = [fid_a]
    for s in noise_seeds:
        other = Evaluation(probe.run_dir, probe.settings.replace(seed=s), trajectory_n=0)
        fids.append(_draw(other, 0.0)[1])
    seed_std = float(np.std(fids, ddof=1))

    def twin(delta: float, where: str) -> dict:
        b, fid_b = _draw(ev, delta, where)
        diff = (a.int() - b.int()).abs().float()
        return {"delta": delta, "where": where, "pixels_differing": float((diff > 0).float().mean()),
                "mean_abs_diff": float(diff.mean()), "fid": fid_b, "fid_change": abs(fid_b - fid_a),
                "_images": b[:8]}

    twins = [twin(perturb, "z0")] + [twin(d, "calls") for d in call_deltas]
    at = [t for t in twins if t["delta"] == perturb]
    proto = ev.gen.protocol(0, 0)
    return {"label": probe.label, "run_id": proto["run_id"], "sampler": proto["sampler"],
            "sampler_params": proto["sampler_params"], "steps": proto["steps"], "cfg_scale": probe.settings.cfg_scale,
            "ema": probe.settings.ema, "n": probe.settings.n, "perturbation": perturb, "fid": fid_a,
            "fid_seed_std": seed_std, "fid_seeds": fids, "twins": twins,
            "stable": bool(all(t["fid_change"] <= seed_std for t in at)),
            "_images": [a[:8]] + [t["_images"] for t in twins if t["where"] == "calls"][-2:]}


def table(results: list[dict]) -> str:
    from tabulate import tabulate

    def sampler(r: dict) -> str:
        extra = {k: v for k, v in r["sampler_params"].items() if k != "steps"}
        return f"{r['sampler']} {r['steps']}" + (f" {extra}" if extra else "")

    def cell(t: dict) -> str:
        return f"{100 * t['pixels_differing']:.2f} % / {t['mean_abs_diff']:.2f} / {t['fid']:.2f}"

    heads = [f"{'z0' if t['where'] == 'z0' else 'every call'} + {t['delta']:g}·ξ" for t in results[0]["twins"]]
    body = [[r["label"], sampler(r), f"{r['fid']:.2f} ± {r['fid_seed_std']:.2f}", *map(cell, r["twins"]),
             "yes" if r["stable"] else "**no**"] for r in results]
    return tabulate(body, headers=["row", "sampler", "FID ± seed std", *heads,
                                   f"|ΔFID| ≤ seed std at {results[0]['perturbation']:g}"], tablefmt="github")


def figure(results: list[dict], dest: Path) -> Path:
    """For each row, 8 images of the plain draw above the same 8 with the two largest per-call perturbations."""
    from hdfm_bench.evaluation import plots

    plt, _ = plots.pyplot()
    fig, axes = plt.subplots(len(results), 1, figsize=(8, 2.1 * len(results)), squeeze=False)
    for ax, r in zip(axes[:, 0], results):
        rows = [torch.cat(list(x.permute(0, 2, 3, 1)), dim=1) for x in r["_images"]]  # (H, 8W, C) each
        img = torch.cat(rows, dim=0).squeeze(-1).numpy()
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255)
        big = [t for t in r["twins"] if t["where"] == "calls"][-2:]
        ax.set_title(f"{r['label']}: plain, then every call + {big[0]['delta']:g}·ξ and + {big[1]['delta']:g}·ξ "
                     f"({100 * big[0]['pixels_differing']:.0f} % and {100 * big[1]['pixels_differing']:.0f} % of "
                     "pixels differ)", fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    return plots.save_figure(fig, dest)


def write(results: list[dict], out: Path, head: str) -> dict:
    out = Path(out)
    text = head + table(results) + "\n\nCells: share of uint8 pixels that differ from the plain draw / their mean " \
        "absolute difference in grey levels / the FID of the perturbed draw.\n"
    write_text(out / "table.md", text)
    fig = figure(results, out / "stability.png")
    clean = [{**{k: v for k, v in r.items() if not k.startswith("_")},
              "twins": [{k: v for k, v in t.items() if not k.startswith("_")} for t in r["twins"]]} for r in results]
    write_text(out / "stability.json", json.dumps(clean, indent=2))
    print(text)
    return {"table": str(out / "table.md"), "figure": str(fig), "rows": clean}


def reproduce_stability(quick: bool = False, out: str | Path = "results/stability", executor: str = "debug",
                        spec: str | Path | None = None, sets=(), n: int = 300) -> dict:
    """Probe the first training seed's run of every :data:`PROBES` row of the head-to-head sweep (trained
    if needed) at its path's own sampler and budget, CFG 1, EMA 0.999, n images, sampling seed 0."""
    from .headtohead import SPEC
    from .reproduce import run_sweep

    out = Path(out) / ("quick" if quick else "")
    sweep = run_sweep(Path(spec or SPEC), executor, sets, quick=quick)
    e = sweep.runs[0].evals[0]
    n = e.n if quick else n
    results = []
    for label, path, target, params in PROBES:
        runs = sorted((r for r in sweep.runs if (r.config.path, r.config.target) == (path, target)),
                      key=lambda r: r.config.seed)
        if not runs:
            continue
        settings = EvalSettings(n=n, ema=max(runs[0].config.ema_decays), cfg_scale=1.0, extractor=e.extractor,
                                reference_split=e.reference_split, sampler_params=params, metrics=("fid",))
        print(f"{label}: probing run {runs[0].run_id}", flush=True)
        results.append(measure(Probe(label, runs[0].config.run_dir(), settings)))
    head = (f"Sampler stability on {sweep.name} (training seed 0 of each row, {sweep.runs[0].config.steps} steps): "
            f"the same n = {n} images (sampling seed 0, CFG 1, EMA {max(sweep.runs[0].config.ema_decays)}, each "
            "path's own sampler and budget) drawn "
            f"again with z0 + {PERTURBATION:g}·ξ, and with the network's input + δ·ξ at every call (a fresh ξ per "
            "call), δ = 1e-6 … 1e-2. Seed noise: the standard deviation of FID over sampling seeds 0, 2, 3, 4 "
            "(same n).\n\n")
    return write(results, out, head)


__all__ = ["PERTURBATION", "PROBES", "Probe", "measure", "table", "figure", "write", "reproduce_stability"]
