"""Figures from the results store (seaborn): FID vs counted NFE, band ratios, the spectral ratio
along sampling, training losses. Every figure is written atomically."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from hdfm_bench.core.io import write_with
from hdfm_bench.core.rundir import read_record

from .tables import TableError, protocol_frame


def pyplot():
    """(matplotlib.pyplot, seaborn) with the Agg backend and the project's theme."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper")
    return plt, sns


def save_figure(fig, dest: str | Path, dpi: int = 120) -> Path:
    """Write ``fig`` as PNG atomically and release it."""
    import matplotlib.pyplot as plt

    out = write_with(Path(dest), lambda tmp: fig.savefig(tmp, dpi=dpi, format="png", bbox_inches="tight"))
    plt.close(fig)
    return out

def lines_by_method(data: pd.DataFrame, x: str, y: str, dest: str | Path, xlabel: str, ylabel: str, *,
                    xscale: str = "linear", yscale: str = "linear") -> Path:
    """One line per method (mean, ± std band over the rows of each x), markers, legend inside."""
    plt, sns = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    sns.lineplot(data=data, x=x, y=y, hue="method", marker="o", errorbar="sd", ax=ax)
    ax.set_xscale(xscale), ax.set_yscale(yscale), ax.set_xlabel(xlabel), ax.set_ylabel(ylabel)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return save_figure(fig, dest)


def plot_metric_vs_nfe(df: pd.DataFrame, dest: str | Path, metric: str = "fid") -> Path:
    """FID (or any metric) versus counted NFE, one line per method."""
    plt, sns = pyplot()
    sub = df[df["metric"] == metric].copy()
    if sub.empty:
        raise TableError(f"no '{metric}' rows to plot")
    proto = protocol_frame(sub)
    if "nfe" not in proto or proto["nfe"].isna().any():
        raise TableError(f"the '{metric}' rows do not all record a counted nfe in their protocol; cannot plot "
                         f"{metric} against NFE")
    sub["nfe"] = proto["nfe"].astype(float).values
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    sns.lineplot(data=sub, x="nfe", y="value", hue="method", marker="o", ax=ax, errorbar="sd")
    ax.set_xlabel("network evaluations (counted)")
    ax.set_ylabel(metric)
    ax.set_xscale("log")
    return save_figure(fig, dest)


def plot_metric_vs_steps(df: pd.DataFrame, dest: str | Path, metric: str = "fid") -> Path:
    """FID (or any metric) versus training steps (the checkpoint each row measured), one line per
    method; needs some method measured at two checkpoints or more (``keep_every``, budget sweeps)."""
    sub = df[df["metric"] == metric].copy()
    if sub.empty:
        raise TableError(f"no '{metric}' rows to plot")
    sub["step"] = pd.to_numeric(sub["checkpoint_step"], errors="coerce")
    if sub.dropna(subset=["step"]).groupby("method")["step"].nunique().max() < 2:
        raise TableError(f"no method has '{metric}' rows at two training steps or more")
    return lines_by_method(sub.dropna(subset=["step"]), "step", "value", dest, "training steps", metric)


def plot_band_ratios(df: pd.DataFrame, dest: str | Path) -> Path:
    """Per-band spectral ratios (generated / reference), one bar group per band."""
    plt, sns = pyplot()
    sub = df[df["metric"].str.startswith("band_ratio@")].copy()
    if sub.empty:
        raise TableError("no band_ratio rows to plot")
    sub["band"] = sub["metric"].str.split("@").str[1]
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    sns.barplot(data=sub, x="band", y="value", hue="method", ax=ax, errorbar="sd")
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.set_yscale("log")
    ax.set_ylabel("power ratio gen / ref (1 = ideal)")
    ax.set_xlabel("octave band (cycles/px)")
    ax.tick_params(axis="x", labelrotation=30)
    return save_figure(fig, dest)


def plot_trajectory(df: pd.DataFrame, dest: str | Path) -> Path:
    """High-frequency energy ratio of x̂ along sampling (t = 0 noise → 1 data), per method."""
    plt, sns = pyplot()
    sub = df[df["metric"] == "r_hf_trajectory"].copy()
    if sub.empty:
        raise TableError("no r_hf_trajectory rows to plot")
    sub["t"] = protocol_frame(sub)["t"].astype(float).values
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    sns.lineplot(data=sub, x="t", y="value", hue="method", ax=ax, errorbar="sd")
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.set_yscale("log")
    ax.set_xlabel("t (0 = source, 1 = data)")
    ax.set_ylabel("R_hf of the sampler state vs data")
    return save_figure(fig, dest)


def plot_losses(histories: dict[str, list], dest: str | Path) -> Path:
    """Training loss curves ({method: [[step, loss], ...]}), smoothed over 25 steps."""
    plt, sns = pyplot()
    frames = [pd.DataFrame(h, columns=["step", "loss"]).assign(method=m) for m, h in histories.items() if h]
    if not frames:
        raise TableError("no training histories to plot")
    data = pd.concat(frames)
    data["loss"] = data.groupby("method")["loss"].transform(lambda s: s.rolling(25, min_periods=1).mean())
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    sns.lineplot(data=data, x="step", y="loss", hue="method", ax=ax)
    ax.set_yscale("log")
    ax.set_ylabel("training loss (own objective, 25-step mean)")
    return save_figure(fig, dest)


def plot_run_losses(frame: pd.DataFrame, runs_dir: str | Path, dest: str | Path) -> Path:
    """:func:`plot_losses` of the runs a store's rows name (``method``, ``run_id``), read from their
    run records (``run.json``) under ``runs_dir``; a run without a record is left out."""
    hist = {}
    for (method, run_id), _ in frame.groupby(["method", "run_id"]):
        rec = read_record(Path(runs_dir) / run_id)
        if rec:
            hist[f"{method}"] = rec.get("history", [])
    return plot_losses(hist, dest)


def plot_diagnosis(d: dict, dest: str | Path) -> Path:
    """``hdfm-bench diagnose``: held-out loss against the linear floor over t (left) and the
    pass-through fraction c per band and t (right; 1 = the noise passes through as it should)."""
    plt, sns = pyplot()
    pts = d["points"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    ts = [p["t"] for p in pts]
    left.plot(ts, [p["loss"] for p in pts], "o-", label="held-out loss")
    left.plot(ts, [p["floor"] for p in pts], "s--", label="linear-estimator floor")
    left.set_yscale("log"), left.set_xlabel("t (0 = source, 1 = data)")
    left.set_ylabel(f"MSE of the {d['target']} prediction"), left.legend(fontsize=7)
    grid = pd.DataFrame([p["pass_through"] for p in pts], index=[f"{t:.3g}" for t in ts]).T
    sns.heatmap(grid, ax=right, vmin=0, vmax=1.2, cmap="viridis", annot=len(pts) <= 12, fmt=".2f",
                annot_kws={"fontsize": 6}, cbar_kws={"label": "c"})
    right.set_xlabel("t"), right.set_ylabel("band (cycles/px)")
    right.set_title(f"pass-through of {d['probe']} on ε", fontsize=8)
    fig.suptitle(f"{d['path']} ({d['run_id']}), step {d['checkpoint_step']}, EMA {d['ema']}, n {d['n']}",
                 fontsize=9)
    fig.tight_layout()
    return save_figure(fig, dest)


def draw_kinds(df: pd.DataFrame, folder: str | Path, kinds: dict) -> tuple[dict[str, Path], dict[str, str]]:
    """Draw each ``kinds[name](df, folder / "<name>.png")`` that has data; returns (the figures drawn,
    by name; why each other one was skipped, by name: the TableError of a kind without data)."""
    drawn, skipped = {}, {}
    for name, draw in kinds.items():
        try:
            drawn[name] = draw(df, Path(folder) / f"{name}.png")
        except TableError as err:  # this kind has no data in the rows: the others are still drawn
            skipped[name] = str(err)
    return drawn, skipped


#: the figures ``hdfm-bench plot`` draws from a store (``losses`` reads the run records instead)
PLOTS = {"fid_vs_nfe": plot_metric_vs_nfe, "fid_vs_steps": plot_metric_vs_steps, "band_ratios": plot_band_ratios,
         "trajectory": plot_trajectory}

__all__ = ["pyplot", "save_figure", "plot_metric_vs_nfe", "plot_metric_vs_steps", "plot_band_ratios",
           "plot_trajectory", "plot_losses",
           "plot_run_losses", "plot_diagnosis", "draw_kinds", "PLOTS"]
