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
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd

SPECS = Path(__file__).parent / "specs"
ABLATION_SPEC, SPECTRAL_SPEC = SPECS / "ablation-mnist.toml", SPECS / "spectral-mnist.toml"
# --quick: the same pipeline on a budget that runs in a few minutes (one seed, small n)
QUICK = {"base": {"steps": 40, "batch_size": 32, "checkpoint_every": 40},
         "grid": {"seed": [0]}, "eval": {"n": 40, "steps": [5, 10]}, "include_seeds": [0]}
ROW_NAMES = {("noise_fm", "x"): "noise FM (no blur) · x-pred", ("noise_fm", "v"): "noise FM (no blur) · v-pred",
             ("noise_fm", "eps"): "noise FM (no blur) · ε-pred", ("hdfm", "x"): "HDFM (blur) · x-pred",
             ("hdfm", "v"): "HDFM (blur) · v-pred", ("hdfm", "eps"): "HDFM (blur) · ε-pred",
             ("blurring_diffusion", "eps"): "Blurring Diffusion · ε-pred (ε-loss)",
             ("hdfm_code", "x"): "HDFM code (adaptive β sampler) · x-pred",
             ("ihdm", "prev_mean"): "IHDM · previous-level mean", ("cold_blur", "x"): "cold diffusion (blur) · x-pred, L1"}
METRICS = {"fid": "FID", "kid": "KID", "precision": "precision", "recall": "recall", "r_hf": "R_hf",
           "class_accuracy": "class accuracy"}


def quick_spec(spec: Path) -> dict:
    """``spec`` parsed, with the QUICK budget and its own sweep name (nothing shared with the full run)."""
    data = tomllib.loads(spec.read_text())
    data["name"] = data.get("name", spec.stem) + "-quick"
    data["base"].update(QUICK["base"])
    if "seed" in data.get("grid", {}):
        data["grid"]["seed"] = QUICK["grid"]["seed"]
    for inc in data.get("include", []):
        if "seed" in inc:
            inc["seed"] = QUICK["include_seeds"]
    data["eval"]["n"] = QUICK["eval"]["n"]
    if isinstance(data["eval"].get("steps"), list) and len(data["eval"]["steps"]) > 1:
        data["eval"]["steps"] = QUICK["eval"]["steps"]
    return data


def run_sweep(spec: Path, executor: str = "debug", sets=(), timeout: float | None = None, quick: bool = False):
    """Train and evaluate whatever the spec still needs; returns the loaded sweep."""
    from . import sweep as sw

    sweep = sw.Sweep.load(spec, overrides=sets, data=quick_spec(spec) if quick else None)
    todo, _ = sw.plan(sweep, retry_failed=True)
    print(f"{sweep.name}: {len(sweep.runs)} run(s), {len(todo)} to train or evaluate (executor {executor})")
    jobs = sw.submit(sweep, executor, retry_failed=True)
    if executor == "debug":
        sw.run_debug(jobs)
    elif jobs:
        sw.wait(jobs, timeout or 60.0 * sweep.resources["time"] * len(jobs) + 60)
    failed = [r for r in sweep.status() if r["state"] != "done"]
    if failed:
        raise RuntimeError(f"{sweep.name}: {len(failed)} run(s) not done: "
                           + "; ".join(f"{r['label']} {r['state']} {r['detail']}" for r in failed[:3]))
    return sweep


def _rows(sweep) -> pd.DataFrame:
    from .store import ResultStore

    df = ResultStore(sweep.store).read()
    keys = {k for run in sweep.runs for k in run.eval_keys(sweep.eval_only)}
    return df[df["eval_key"].isin(keys)].copy()


def _frame(df: pd.DataFrame) -> pd.DataFrame:
    proto = df["protocol_json"].map(json.loads)
    df = df.assign(steps=proto.map(lambda p: p["steps"]), nfe=proto.map(lambda p: p["nfe"]),
                   sampler=proto.map(lambda p: p["sampler"]))
    df["method"] = [ROW_NAMES.get((p, t), f"{p} · {t}") for p, t in zip(df["path"], df["target"])]
    return df


def ablation_tables(df: pd.DataFrame) -> tuple[str, dict]:
    """Markdown: FID by sampler budget, then every metric at each budget; and the claim check."""
    from . import report

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
        text, warn = report.make_table(sub, row="method", column="col",
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
                     f"and ε-pred {c['hdfm_eps']:.3g} (x-prediction {'helps' if c['x_pred_helps'] else 'does not help'})")
    if not claim:
        return "- not testable: the spec lacks hdfm / noise_fm x-, v- and ε-prediction rows at a common budget"
    both = all(c["blur_helps"] and c["x_pred_helps"] for c in claim.values())
    lines.append(f"- Claim \"HDFM benefits from both blur and x-prediction\" (mean FID, every budget): "
                 f"**{'holds' if both else 'does not hold'} here**.")
    return "\n".join(lines)


def _copy_rows(sweep, dest: Path) -> None:
    """The sweep's rows, as stored, into a fresh results store at ``dest`` (replaced at once)."""
    from .io import atomic_path
    from .store import ResultStore

    keys = {k for run in sweep.runs for k in run.eval_keys(sweep.eval_only)}
    rows = [r for r in ResultStore(sweep.store).rows() if r.get("eval_key") in keys]
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dest) as tmp:
        tmp.unlink(missing_ok=True)
        ResultStore(tmp).append(rows)


def reproduce_ablation(quick: bool = False, out: str | Path = "results/ablation", executor: str = "debug",
                       spec: str | Path | None = None, sets=()) -> dict:
    from .io import write_text

    out = Path(out) / ("quick" if quick else "")
    spec = Path(spec or ABLATION_SPEC)
    sweep = run_sweep(spec, executor, sets, quick=quick)
    rows = _rows(sweep)
    tables, claim = ablation_tables(rows)
    base = sweep.runs[0].config
    e = sweep.runs[0].evals[0]
    head = (f"HDFM ablation on {base.task}: {base.backbone} {base.backbone_params}, {base.steps} AdamW steps × batch "
            f"{base.batch_size} (lr {base.lr}, warm-up {base.warmup}), EMA {e.ema}, "
            f"{len({r.config.seed for r in sweep.runs})} training seed(s); each path's own sampler; CFG {e.cfg_scale:g}; "
            f"n = {e.n} samples vs the {e.reference_split} split, extractor {e.extractor}. Spec: {spec}.\n\n")
    text = head + tables + "\n**Claim check**\n\n" + claim_text(claim) + "\n"
    write_text(out / "table.md", text)
    _copy_rows(sweep, out / "results.jsonl")
    fig = plot_fid_vs_nfe(_frame(rows), out / "fid_vs_nfe.png")
    summary = {"spec": str(spec), "claim": claim, "table": str(out / "table.md"), "figure": str(fig)}
    write_text(out / "summary.json", json.dumps(summary, indent=2))
    print(text)
    return summary


def plot_fid_vs_nfe(df: pd.DataFrame, dest: Path) -> Path:
    from .report import _plt, _save

    plt, sns = _plt()
    sub = df[df["metric"] == "fid"]
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    sns.lineplot(data=sub, x="nfe", y="value", hue="method", marker="o", errorbar="sd", ax=ax)
    ax.set_xscale("log"), ax.set_xlabel("counted NFE per sample"), ax.set_ylabel("FID (domain extractor)")
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return _save(fig, dest)
