"""``hdfm-bench reproduce ablation`` and ``reproduce spectral``: HDFM's ablation table and Fig. 5.

Both are sweeps (``bench/specs/ablation-mnist.toml``, ``bench/specs/spectral-mnist.toml``) run
through the sweep machinery, so the same command runs them here (``--executor debug``: in this
process, one run after the other) or as a Slurm array (``--executor slurm``), resumes whatever is
already trained or evaluated, and shares runs between the two through their config hashes.
Outputs (``results/ablation/``, ``results/spectral/``): results.jsonl (the protocol-stamped rows),
table.md, figures and summary.json.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from hdfm_bench.core.io import write_text
from hdfm_bench.evaluation import plots
from hdfm_bench.evaluation import tables as tables_mod
from hdfm_bench.evaluation.store import FILE_NAME
from hdfm_bench.specs import SPECS_DIR

from .reproduce import copy_rows, run_sweep, sweep_rows

ABLATION_SPEC, SPECTRAL_SPEC = SPECS_DIR / "ablation-mnist.toml", SPECS_DIR / "spectral-mnist.toml"
#: how the ablation names a path in its rows; a row is "<path name> · <target>" (ROW_ORDER below)
PATH_NAMES = {"noise_fm": "noise FM (no blur)", "hdfm": "HDFM (blur)", "blurring_diffusion": "Blurring Diffusion",
              "hdfm_code": "HDFM code (adaptive β sampler)", "ihdm": "IHDM", "cold_blur": "cold diffusion (blur)"}
TARGET_NAMES = {"x": "x-pred", "v": "v-pred", "eps": "ε-pred", "prev_mean": "previous-level mean"}
ROW_ORDER = [("noise_fm", "x"), ("noise_fm", "v"), ("noise_fm", "eps"), ("hdfm", "x"), ("hdfm", "v"),
             ("hdfm", "eps"), ("blurring_diffusion", "eps"), ("hdfm_code", "x"), ("ihdm", "prev_mean"),
             ("cold_blur", "x")]


def row_name(path: str, target: str) -> str:
    return f"{PATH_NAMES.get(path, path)} · {TARGET_NAMES.get(target, target)}"


ROW_NAMES = {key: row_name(*key) for key in ROW_ORDER}
METRICS = {"fid": "FID", "kid": "KID", "precision": "precision", "recall": "recall", "r_hf": "R_hf",
           "class_accuracy": "class accuracy"}


def _frame(df: pd.DataFrame) -> pd.DataFrame:
    proto = df["protocol_json"].map(json.loads)
    df = df.assign(steps=proto.map(lambda p: p["steps"]), nfe=proto.map(lambda p: p["nfe"]),
                   sampler=proto.map(lambda p: p["sampler"]))
    df["method"] = [row_name(p, t) for p, t in zip(df["path"], df["target"])]
    return df


def ablation_tables(df: pd.DataFrame) -> tuple[str, dict]:
    """Markdown: FID by sampler budget, then every metric at each budget; and the claim check."""
    df = _frame(df[~df["metric"].isin(["r_hf_trajectory"]) & ~df["metric"].str.startswith("band_ratio")])
    budgets = sorted(df["steps"].unique())
    order = [n for n in ROW_NAMES.values() if n in set(df["method"])]
    df["method"] = pd.Categorical(df["method"], order, ordered=True)
    df = df.sort_values("method")
    df["method"] = df["method"].astype(str)
    parts = []
    nfe = df.groupby(["method", "steps"])["nfe"].first().unstack()
    for metric, name in METRICS.items():
        sub = df[df["metric"] == metric].assign(col=lambda d: d["steps"].map(lambda s: f"{metric}@{s} steps"))
        if sub.empty:
            continue
        text, warn = tables_mod.make_table(sub, row="method", column="col",
                                       columns=[f"{metric}@{s} steps" for s in budgets
                                                if f"{metric}@{s} steps" in set(sub["col"])])
        parts.append(f"**{name}** (mean ± std over training seeds, best seed in brackets)\n\n{text}\n")
    nfe_md = nfe.reindex(order).to_markdown(floatfmt=".0f") if hasattr(nfe, "to_markdown") else str(nfe)
    parts.insert(1, f"**Counted NFE per sample** (sampler's own count; columns = sampler steps)\n\n{nfe_md}\n")
    claim = claim_check(df, budgets)
    return "\n".join(parts), claim


def claim_check(df: pd.DataFrame, budgets) -> dict:
    """HDFM's claim, tested on mean FID: blur helps x-pred, x-pred helps under blur, at each budget."""
    fid = df[df["metric"] == "fid"].groupby(["method", "steps"])["value"].agg(["mean", "std"])
    out = {}
    for s in budgets:
        def m(name):
            return float(fid.loc[(name, s), "mean"]) if (name, s) in fid.index else float("nan")

        hx, nx = m(ROW_NAMES[("hdfm", "x")]), m(ROW_NAMES[("noise_fm", "x")])
        hv, he = m(ROW_NAMES[("hdfm", "v")]), m(ROW_NAMES[("hdfm", "eps")])
        if np.isnan([hx, nx, hv, he]).any():  # a budget only the level samplers ran (e.g. IHDM's K)
            continue
        out[int(s)] = {"hdfm_x": hx, "noise_fm_x": nx, "hdfm_v": hv, "hdfm_eps": he,
                       "blur_helps": bool(hx < nx), "x_pred_helps": bool(hx < hv and hx < he)}
    return out


def claim_text(claim: dict) -> str:
    lines = []
    for s, c in claim.items():
        lines.append(f"- {s} steps: HDFM x-pred FID {c['hdfm_x']:.3g} vs noise FM x-pred {c['noise_fm_x']:.3g} "
                     f"(blur {'helps' if c['blur_helps'] else 'does not help'}); vs HDFM v-pred {c['hdfm_v']:.3g} "
                     f"and ε-pred {c['hdfm_eps']:.3g} "
                     f"(x-prediction {'helps' if c['x_pred_helps'] else 'does not help'})")
    if not claim:
        return "- not testable: the spec lacks hdfm / noise_fm x-, v- and ε-prediction rows at a common budget"
    both = all(c["blur_helps"] and c["x_pred_helps"] for c in claim.values())
    lines.append(f"- Claim \"HDFM benefits from both blur and x-prediction\" (mean FID, every budget): "
                 f"**{'holds' if both else 'does not hold'} here**.")
    return "\n".join(lines)


def reproduce_ablation(quick: bool = False, out: str | Path = "results/ablation", executor: str = "debug",
                       spec: str | Path | None = None, sets=(), eval_sets=(), best: str | None = None,
                       select_seeds: str = "0", report_seeds: str = "1") -> dict:
    """``best`` (e.g. "cfg_scale,ema"): each row at each budget at its best setting over these fields,
    chosen on sampling seeds ``select_seeds`` and reported on ``report_seeds`` (extend the spec's
    [eval] grid and seeds with ``eval_sets``, e.g. ``cfg_scale=[1, 2, 3]``, ``seed=[0, 1]``)."""
    out = Path(out) / ("quick" if quick else "")
    spec = Path(spec or ABLATION_SPEC)
    axes = [a.strip() for a in best.split(",") if a.strip()] if best else []
    if axes:  # refuse a bad request before any training
        select, report = tables_mod.parse_seeds(select_seeds), tables_mod.parse_seeds(report_seeds, "--report-seeds")
        tables_mod.check_selection(axes, select, report)
    sweep = run_sweep(spec, executor, sets, quick=quick, eval_sets=eval_sets)
    rows = sweep_rows(sweep)
    grid_md = ""
    if axes:
        framed = _frame(rows[~rows["metric"].isin(["r_hf_trajectory"])])
        rows, grid = tables_mod.best_settings(framed, axes, select, report, by=("method", "steps"), relabel=False)
        grid_md = (f"\n**Selection grid** (best over {' × '.join(axes)} per row and budget: FID on sampling seeds "
                   f"{select_seeds}, * = chosen; the tables above report the chosen setting on seeds {report_seeds})"
                   f"\n\n{tables_mod.selection_grid(grid, axes)}\n")
    tables, claim = ablation_tables(rows)
    base = sweep.runs[0].config
    e = sweep.runs[0].evals[0]
    head = (f"HDFM ablation on {base.task}: {base.backbone} {base.backbone_params}, {base.steps} AdamW steps × batch "
            f"{base.batch_size} (lr {base.lr}, warm-up {base.warmup}), EMA {e.ema}, "
            f"{len({r.config.seed for r in sweep.runs})} training seed(s); each path's own sampler; CFG "
            f"{e.cfg_scale:g}; "
            f"n = {e.n} samples vs the {e.reference_split} split, extractor {e.extractor}. Spec: {spec}.\n\n")
    text = head + tables + "\n**Claim check**\n\n" + claim_text(claim) + "\n" + grid_md
    write_text(out / "table.md", text)
    copy_rows(sweep, out / FILE_NAME)
    fig = plot_fid_vs_nfe(_frame(rows), out / "fid_vs_nfe.png")
    summary = {"spec": str(spec), "claim": claim, "table": str(out / "table.md"), "figure": str(fig)}
    write_text(out / "summary.json", json.dumps(summary, indent=2))
    print(text)
    return summary


def plot_fid_vs_nfe(df: pd.DataFrame, dest: Path) -> Path:
    return plots.lines_by_method(df[df["metric"] == "fid"], "nfe", "value", dest, "counted NFE per sample",
                                 "FID (domain extractor)", xscale="log")
