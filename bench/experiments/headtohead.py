"""``hdfm-bench reproduce headtohead``: every method at its best setting, at a longer budget (issue 17).

1. The sweep ``bench/specs/headtohead-mnist.toml`` trains the key rows with 3 training seeds and
   keeps a checkpoint every ``keep_every`` steps; it also measures one fixed protocol (each path's
   own sampler and budget, CFG 1, EMA 0.999) at the end of training.
2. **Selection.** For every row, the same grid — CFG scale × EMA decay × sampler budget
   (:data:`GRID`, :data:`BUDGETS`) — is evaluated on sampling seed A (:data:`SELECT_SEEDS`), on the
   run of the first training seed (the grid costs 20 evaluations per row; evaluating it on every
   training seed would triple that). The setting with the lowest mean FID is chosen
   (:func:`tables.choose_settings`).
3. **Report.** The chosen setting is evaluated on sampling seed B (:data:`REPORT_SEEDS`, other
   images than the ones the choice was made on) for every training seed, at the end of training
   and at the kept checkpoints of :func:`curve_steps`: the tuned table and FID against training steps.

Outputs (``results/headtohead/``): results.jsonl (every row measured, protocol-stamped),
table.md (tuned table, fixed-protocol table, the selection grid, FID by training step, the claim
check), fid_vs_steps.png, summary.json.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import math
from pathlib import Path

import pandas as pd

from hdfm_bench.core.io import write_text
from hdfm_bench.core.rundir import kept_steps
from hdfm_bench.evaluation import plots, tables
from hdfm_bench.evaluation.protocol import EvalSettings
from hdfm_bench.evaluation.store import FILE_NAME, ResultStore
from hdfm_bench.sampling.generate import resolve_sampler
from hdfm_bench.specs import SPECS_DIR
from hdfm_bench.sweeps.job import SweepStore

from .reproduce import run_sweep

SPEC = SPECS_DIR / "headtohead-mnist.toml"
SELECT_SEEDS, REPORT_SEEDS = (0,), (1,)
#: the guidance axis of the search (CFG with JiT's interval (0.1, 1]); the EMA axis is every decay the
#: runs keep (``ema_decays``)
GRID = {"cfg_scale": (1.0, 1.5, 2.0, 3.0, 4.0)}
#: sampler budgets searched, by sampler (a level sampler's budget is its path's K: not searched)
BUDGETS = {"heun": (10, 20), "hdfm_exact": (10, 20), "hdfm_adaptive": (10, 20), "euler": (10, 20),
           "posterior": (25, 50)}
AXES = ("cfg_scale", "ema", "steps")
QUICK_GRID = {"cfg_scale": (1.0, 3.0)}
TABLE_METRICS = ["fid", "kid", "class_accuracy", "r_hf", "lsd"]
INCEPTION = "inception-offline"


@dataclasses.dataclass(frozen=True)
class Row:
    """A row of the comparison: the runs of (path, target) sampled with ``sampler_params``."""

    label: str
    path: str
    target: str
    sampler_params: tuple = ()


ROWS = (
    Row("noise FM · x-pred", "noise_fm", "x"),
    Row("HDFM · x-pred", "hdfm", "x"),
    Row("HDFM code · x-pred", "hdfm_code", "x"),
    Row("Blurring Diffusion · ε-pred (paper recipe)", "blurring_diffusion", "eps"),
    Row("Blurring Diffusion · x-pred (x-loss)", "blurring_diffusion", "x"),
    Row("IHDM · previous-level mean", "ihdm", "prev_mean"),
)


class Measurer:
    """Evaluates (run, setting) pairs into the sweep's store, skipping those already stored."""

    def __init__(self, sweep):
        self.store = SweepStore(sweep.store, sweep.name)
        self.keys: set[str] = set()

    def __call__(self, run, label: str, setting: EvalSettings) -> None:
        key = setting.key(run.run_id, run.config.steps)
        self.keys.add(key)
        rows = self.store.measure(run.config.run_dir(), setting, key, label, trajectory_n=0)
        if rows is None:
            return
        fid = next(r["value"] for r in rows if r["metric"] == "fid")
        print(f"  {label}: seed {run.config.seed}, step {rows[0]['checkpoint_step']}, cfg {setting.cfg_scale:g}, "
              f"ema {setting.ema}, steps {setting.steps}, sampling seed {setting.seed}: FID {fid:.3g}", flush=True)

    def frame(self) -> pd.DataFrame:
        df = self.store.store.read()
        return df[df["eval_key"].isin(self.keys)].copy()


def _runs(sweep, row: Row) -> list:
    runs = [r for r in sweep.runs if r.config.path == row.path and r.config.target == row.target]
    return sorted(runs, key=lambda r: r.config.seed)


def _base(row: Row, run) -> EvalSettings:
    e = run.evals[0]  # the spec's fixed protocol: its n, extractor, reference and metrics
    return EvalSettings(n=e.n, extractor=e.extractor, reference_split=e.reference_split, metrics=e.metrics,
                        cfg_interval=e.cfg_interval, sampler_params=dict(row.sampler_params))


def budgets(run) -> tuple:
    sampler, _ = resolve_sampler(run.config.path, EvalSettings(), **run.config.path_params)
    return BUDGETS.get(sampler, (None,))


def reproduce_headtohead(quick: bool = False, out: str | Path = "results/headtohead", executor: str = "debug",
                         spec: str | Path | None = None, sets=(), rows: tuple[Row, ...] = ROWS,
                         inception_n: int = 0) -> dict:
    """``inception_n`` > 0: also the Inception FID (``inception-offline``) of every row's chosen setting
    at the end of training, on ``inception_n`` images of the report seeds."""
    out = Path(out) / ("quick" if quick else "")
    spec = Path(spec or SPEC)
    sweep = run_sweep(spec, executor, sets, quick=quick)
    grid = QUICK_GRID if quick else GRID
    measure = Measurer(sweep)
    rows = [r for r in rows if _runs(sweep, r)]
    if not rows:
        raise ValueError(f"{spec}: none of the comparison's rows ({', '.join(r.label for r in ROWS)}) is in the sweep")
    chosen: dict[str, dict] = {}
    for row in rows:  # 2. selection on seeds A, first training seed
        runs = _runs(sweep, row)
        base = _base(row, runs[0])
        steps = budgets(runs[0])[:1] if quick else budgets(runs[0])
        emas = runs[0].config.ema_decays
        print(f"{row.label}: selecting over {len(grid['cfg_scale']) * len(emas) * len(steps)} settings")
        for cfg, ema, st in itertools.product(grid["cfg_scale"], emas, steps):
            for seed in SELECT_SEEDS:
                measure(runs[0], row.label, base.replace(cfg_scale=cfg, ema=ema, steps=st, seed=seed))
    df = measure.frame()
    choice, selection = tables.choose_settings(df, AXES, SELECT_SEEDS)
    for row in rows:  # 3. the chosen setting on seeds B: every training seed, every kept checkpoint
        runs = _runs(sweep, row)
        c = choice[(row.label,)]
        chosen[row.label] = c
        setting = _base(row, runs[0]).replace(cfg_scale=c["cfg_scale"], ema=c["ema"], steps=c["steps"])
        for run in runs:
            for seed in REPORT_SEEDS:
                for step in curve_steps(run) + [None]:
                    measure(run, row.label, setting.replace(seed=seed, checkpoint_step=step))
                if inception_n:
                    measure(run, row.label, setting.replace(seed=seed, extractor=INCEPTION, n=inception_n,
                                                            metrics=("fid",)))
    df = measure.frame()
    return write_outputs(df, sweep, spec, out, chosen, selection, rows)


def curve_steps(run) -> list[int]:
    """The kept checkpoints evaluated for the curve (the last step is always evaluated): every one when
    there are at most three, else every second (on 2 CPU cores an evaluation costs 5–40 s)."""
    kept = [s for s in kept_steps(run.config.run_dir()) if s < run.config.steps]
    return kept if len(kept) <= 3 else kept[1::2]


def _final(df: pd.DataFrame, sweep) -> pd.DataFrame:
    final = {r.run_id: r.config.steps for r in sweep.runs}
    return df[df["checkpoint_step"] == df["run_id"].map(final)]


def curve_frame(df: pd.DataFrame) -> pd.DataFrame:
    """FID of the chosen settings on the report seeds, by training step: method, step, seed, fid."""
    protos = df["protocol_json"].map(json.loads)
    sub = df[(df["metric"] == "fid") & protos.map(lambda p: p["seed"] in REPORT_SEEDS)]
    return pd.DataFrame({"method": sub["method"], "step": sub["checkpoint_step"].astype(int),
                         "run_id": sub["run_id"], "fid": sub["value"].astype(float)})


def claim_over_steps(curve: pd.DataFrame) -> list[dict]:
    """At each kept step: HDFM x-pred vs noise FM x-pred mean FID, and whether the gap exceeds the
    seed noise (the two seed standard deviations combined)."""
    out = []
    for step, g in curve.groupby("step"):
        stats = g.groupby("method")["fid"].agg(["mean", "std", "count"])
        a, b = "HDFM · x-pred", "noise FM · x-pred"
        if a not in stats.index or b not in stats.index:
            continue
        gap = stats.at[a, "mean"] - stats.at[b, "mean"]
        noise = math.sqrt(stats.at[a, "std"] ** 2 + stats.at[b, "std"] ** 2) if stats.at[a, "count"] > 1 else 0.0
        verdict = "within seed noise" if abs(gap) <= noise else ("blur helps" if gap < 0 else "blur hurts")
        out.append({"step": int(step), "hdfm_x": float(stats.at[a, "mean"]), "noise_fm_x": float(stats.at[b, "mean"]),
                    "gap": float(gap), "seed_noise": float(noise), "verdict": verdict})
    return out


def write_outputs(df: pd.DataFrame, sweep, spec: Path, out: Path, chosen: dict, selection: pd.DataFrame,
                  rows) -> dict:
    protos = df["protocol_json"].map(json.loads)
    inception = df[protos.map(lambda p: p["extractor"] == INCEPTION)]
    df = df[protos.map(lambda p: p["extractor"] != INCEPTION)]
    final = _final(df, sweep)
    tuned, _ = tables.best_settings(final, AXES, SELECT_SEEDS, REPORT_SEEDS)
    tuned_md, _ = tables.make_table(tuned, columns=[m for m in TABLE_METRICS if m in set(tuned["metric"])])
    bands = sorted({m for m in tuned["metric"] if m.startswith("band_ratio@")},
                   key=lambda m: float(m.split("@")[1].split("-")[0]))
    bands_md = tables.make_table(tuned, columns=bands, digits=3)[0] if bands else ""
    fixed = ResultStore(sweep.store).read()
    fixed = fixed[fixed["eval_key"].isin({k for r in sweep.runs for k in r.eval_keys(False)})].copy()
    fixed["method"] = [next((r.label for r in rows if (r.path, r.target) == (p, t)), f"{p} · {t}")
                       for p, t in zip(fixed["path"], fixed["target"])]
    fixed_md, _ = tables.make_table(fixed, columns=[m for m in TABLE_METRICS if m in set(fixed["metric"])])
    curve = curve_frame(df)
    steps = sorted(curve["step"].unique())
    by_step = df[(df["metric"] == "fid") & df["protocol_json"].map(lambda p: json.loads(p)["seed"] in REPORT_SEEDS)]
    by_step = by_step.assign(metric=by_step["checkpoint_step"].map(lambda s: f"FID@{s}"))
    curve_md, _ = tables.make_table(by_step, columns=[f"FID@{s}" for s in steps])
    claim = claim_over_steps(curve)
    cfg = sweep.runs[0].config
    e = sweep.runs[0].evals[0]
    head = (f"Head-to-head on {cfg.task} at {cfg.steps} AdamW steps × batch {cfg.batch_size} "
            f"({cfg.steps * cfg.batch_size:,} images), {cfg.backbone} {cfg.backbone_params}, "
            f"{len({r.config.seed for r in sweep.runs})} training seeds; n = {e.n} samples vs the "
            f"{e.reference_split} split, extractor {e.extractor}. Spec: {spec.name}.\n\n")
    protocol = (f"**Selection protocol.** Per row, the grid CFG {list(GRID['cfg_scale'])} (interval "
                f"{list(e.cfg_interval)}) × EMA {list(cfg.ema_decays)} × sampler budget ({_budget_text()}) is "
                f"evaluated on sampling seed(s) {list(SELECT_SEEDS)} of the first training seed's run; the lowest "
                f"FID is chosen; the table reports the chosen setting on sampling seed(s) {list(REPORT_SEEDS)} (other "
                "images) of every training seed.\n\n")
    text = (head + protocol + "**Tuned (best setting per row, selected on seeds A, reported on seeds B)**\n\n"
            + tuned_md + "\n\n**Spectral ratio by frequency band** (generated / reference power per band, cycles per "
            "pixel; 1 is ideal; the tuned rows)\n\n" + bands_md
            + "\n\n**Fixed protocol** (each path's own sampler and budget, CFG 1, EMA 0.999, "
            + f"sampling seed {e.seed}; no tuning)\n\n" + fixed_md
            + "\n\n**FID against training steps** (the chosen setting, sampling seed B; mean ± std over training "
            "seeds)\n\n" + curve_md + "\n\n**Does blur help (HDFM x-pred vs noise FM x-pred, chosen settings)?**\n\n"
            + "\n".join(f"- step {c['step']}: HDFM {c['hdfm_x']:.3g} vs noise FM {c['noise_fm_x']:.3g} "
                        f"(gap {c['gap']:+.3g}, seed noise ±{c['seed_noise']:.2g}): {c['verdict']}" for c in claim)
            + _inception_text(inception)
            + "\n\n**Selection grid** (FID on seeds A; * = chosen)\n\n"
            + tables.selection_grid(selection, AXES) + "\n")
    write_text(out / "table.md", text)
    keys = set(df["eval_key"]) | set(fixed["eval_key"]) | set(inception["eval_key"])
    ResultStore.write_fresh(out / FILE_NAME, [r for r in ResultStore(sweep.store).rows() if r.get("eval_key") in keys])
    fig = plot_curve(curve, out / "fid_vs_steps.png")
    summary = {"spec": str(spec), "chosen": chosen, "claim": claim, "table": str(out / "table.md"),
               "figure": str(fig)}
    write_text(out / "summary.json", json.dumps(summary, indent=2, default=str))
    print(text)
    return summary


def _inception_text(inception: pd.DataFrame) -> str:
    if inception.empty:
        return ""
    n = json.loads(inception["protocol_json"].iloc[0])["n_gen"]
    text, _ = tables.make_table(inception[inception["metric"] == "fid"].assign(metric="Inception FID"),
                                columns=["Inception FID"])
    return f"\n\n**Inception FID** ({INCEPTION}, n = {n}, the chosen settings on seeds B, end of training)\n\n{text}"


def _budget_text() -> str:
    return "; ".join(f"{k} {list(v)}" for k, v in BUDGETS.items() if k in ("heun", "hdfm_adaptive", "posterior")) + \
        "; IHDM its K"


def plot_curve(curve: pd.DataFrame, dest: Path) -> Path:
    return plots.lines_by_method(curve, "step", "fid", dest, "training step", "FID (domain extractor, chosen setting)",
                                 yscale="log")


__all__ = ["SPEC", "ROWS", "Row", "GRID", "BUDGETS", "reproduce_headtohead", "claim_over_steps", "curve_frame"]
