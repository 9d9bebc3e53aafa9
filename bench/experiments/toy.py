"""``hdfm-bench reproduce toy``: JiT §3.7 / HDFM Fig. 3–4 — 2-D data buried in D dimensions.

For every path (``noise_fm``; ``hdfm`` = heat dissipation along the D coordinates, a 1-D DCT) and
every D, the 3 targets × seeds MLPs (5 × 256 ReLU, v-loss, as in JiT) are trained at once as one
vmapped, jitted JAX program (``training.jax_vmapped``), sampled with the path's own sampler, projected
back to 2-D by Pᵀ and compared with fresh 2-D data by the sliced Wasserstein distance and MMD
(``evaluation.metrics.toy``). Outputs under ``results/toy/``: results.jsonl (protocol-stamped rows),
table.md (through ``tables.make_table``), scatter_<path>.png (rows: target, columns: D, like JiT's
Fig. 2) and trajectories.png (HDFM Fig. 4: particles in data space and in the DCT domain).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from hdfm_bench.core.io import write_text
from hdfm_bench.evaluation import plots, tables
from hdfm_bench.evaluation.metrics.toy import mmd, sliced_wasserstein
from hdfm_bench.evaluation.store import FILE_NAME, ResultStore
from hdfm_bench.methods import get_path, get_sampler, validation
from hdfm_bench.methods.spectral import dct
from hdfm_bench.tasks import get_task

TARGETS = ("x", "eps", "v")
FULL = {"paths": ("noise_fm", "hdfm"), "dims": (2, 8, 16, 64, 512), "seeds": (0, 1, 2), "steps": 2000,
        "batch_size": 256, "lr": 1e-3, "warmup": 50, "n_eval": 1000, "sampler_steps": 50}
QUICK = {"paths": ("noise_fm",), "dims": (2, 512), "seeds": (0,), "steps": 600, "batch_size": 128, "lr": 2e-3,
         "warmup": 20, "n_eval": 500, "sampler_steps": 20}
TRAJECTORY = {"path": "hdfm", "dim": 16, "target": "x", "particles": 8}


def sample_models(path, models, ids, n: int, dim: int, steps: int, seed: int = 0, callback=None):
    """n samples from each stacked model, every target converted to x̂ (the sampler sees one target).

    Returns (samples (M, n, D) numpy, protocol dict)."""
    import jax
    import jax.numpy as jnp

    m = len(ids)
    rows_target = np.repeat([TARGETS.index(tg) for tg, _ in ids], n)
    sel = jnp.asarray(rows_target)

    @jax.jit
    def denoise(z, t):
        raw = jax.vmap(lambda model, zz, tt: model(zz, tt))(models, z.reshape(m, n, dim), t.reshape(m, n))
        raw = raw.reshape(m * n, dim)
        xs = jnp.stack([path.convert(raw, tg, "x", z, t) for tg in TARGETS])  # (3, M n, D)
        return jnp.take_along_axis(xs, sel[None, :, None], axis=0)[0]

    key = jax.random.PRNGKey(seed)
    k0, kn = jax.random.split(key)
    smp = get_sampler(path.default_sampler, steps=steps)
    noise = (lambda i: jax.random.normal(jax.random.fold_in(kn, i), (m * n, dim))) if smp.stochastic else None
    with validation(False):
        z0 = path.prior(jax.random.normal(k0, (m * n, dim)), None)
        res = smp.sample(path, denoise, z0, "x", noise=noise, callback=callback)
    out = np.asarray(res.samples).reshape(m, n, dim)
    return out, {"sampler": smp.name, "steps": smp.num_steps(path), "nfe": res.calls}


def reproduce_toy(quick: bool = False, out: str | Path = "results/toy", dist: str = "spiral",
                  progress: bool = True) -> dict:
    """Train, sample and measure every (path, D, target, seed); write the table and figures."""
    import jax  # the JAX stack is imported only by the toy (and the JAX backend)
    import jax.numpy as jnp

    from hdfm_bench.training.jax_vmapped import train_models

    setup = QUICK if quick else FULL
    get_task("toy", dist=dist, dim=setup["dims"][0])  # an unknown --dist fails here, before any work
    out = Path(out) / ("quick" if quick else "")
    rows, scatter, timings, traj = [], {}, {}, None
    groups = [(p, d) for p in setup["paths"] for d in setup["dims"]]
    for pname, dim in tqdm(groups, desc="toy: (path, D) groups", disable=not progress):
        path = get_path(pname)
        task = get_task("toy", dist=dist, dim=dim)
        x_train, _ = task.load("train")
        t0 = time.perf_counter()
        models, losses, ids = train_models(path, list(TARGETS), list(setup["seeds"]), jnp.asarray(x_train.numpy()),
                                           steps=setup["steps"], batch_size=setup["batch_size"], lr=setup["lr"],
                                           warmup=setup["warmup"])
        losses = np.asarray(losses)
        train_s = time.perf_counter() - t0
        keep = TRAJECTORY if (pname, dim) == (TRAJECTORY["path"], TRAJECTORY["dim"]) else None
        states: list = []
        cb = (lambda step, t, z, **_: states.append((float(t), np.asarray(z[:TRAJECTORY["particles"]])))) \
            if keep else None
        t1 = time.perf_counter()
        samples, sproto = sample_models(path, models, ids, setup["n_eval"], dim, setup["sampler_steps"], callback=cb)
        sample_s = time.perf_counter() - t1
        timings[f"{pname}/D={dim}"] = {"train_s": round(train_s, 2), "sample_s": round(sample_s, 2), "models": len(ids)}
        if keep:  # the x-pred seed-0 model is the first of the stack (ids are target-major)
            z0 = np.asarray(path.prior(jax.random.normal(jax.random.split(jax.random.PRNGKey(0))[0],
                                                         (len(ids) * setup["n_eval"], dim)), None))
            traj = {"P": task.P64, "times": [0.0] + [s[0] for s in states],
                    "z": np.stack([z0[:TRAJECTORY["particles"]]] + [s[1] for s in states])}
        ref = task.sample_2d(setup["n_eval"], seed=12345).numpy()
        n_params = int(sum(np.prod(leaf.shape[1:]) for leaf in jax.tree_util.tree_leaves(models)))
        for i, (tg, seed) in enumerate(ids):
            proj = samples[i] @ task.P64
            finite = np.isfinite(proj).all()
            proj = np.where(np.isfinite(proj), np.clip(proj, -10, 10), 10.0)  # a diverged model: far, not NaN
            scatter[(pname, tg, dim, seed)] = proj
            protocol = {"task": "toy", "dist": dist, "dim": dim, "n_gen": setup["n_eval"], "n_ref": setup["n_eval"],
                        "reference_split": "sample_2d(seed=12345)", "reference_hash": None, "resolution": None,
                        **sproto, "cfg_scale": 1.0, "ema": None, "seed": seed, "backend": "jax",
                        "budget": {"steps": setup["steps"], "batch_size": setup["batch_size"],
                                   "images_seen": setup["steps"] * setup["batch_size"], "parameters": n_params}}
            base = {"run_id": f"toy-{dist}-{pname}-{tg}-D{dim}-s{seed}", "checkpoint_step": setup["steps"],
                    "method": f"{pname} {tg}-pred", "path": pname, "target": tg, "task": "toy", "finite": bool(finite)}
            rows.append({**base, "metric": f"sw@D={dim}", "value": sliced_wasserstein(proj, ref),
                         "protocol": {**protocol, "extractor": "sliced-wasserstein(256 directions)"}})
            rows.append({**base, "metric": f"mmd@D={dim}", "value": mmd(proj, ref),
                         "protocol": {**protocol, "extractor": "mmd-rbf(0.05..0.8)"}})
            rows.append({**base, "metric": f"final_loss@D={dim}", "value": float(losses[i, -50:].mean()),
                         "protocol": {**protocol, "extractor": "v-loss (last 50 steps)"}})
    return write_outputs(rows, scatter, traj, timings, setup, out, dist)


def write_outputs(rows, scatter, traj, timings, setup, out: Path, dist: str) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    df = ResultStore.write_fresh(out / FILE_NAME, rows).read()  # a fresh store per reproduction
    parts = []
    for metric, what in (("sw", "sliced Wasserstein-1 (lower is better)"), ("mmd", "MMD² (lower is better)")):
        cols = [f"{metric}@D={d}" for d in setup["dims"]]
        text, _ = tables.make_table(df, columns=cols)
        parts.append(f"**{what}**, 2-D projections Pᵀx of {setup['n_eval']} samples vs {setup['n_eval']} fresh "
                      f"{dist} points; mean ± std over seeds {list(setup['seeds'])}\n\n{text}\n")
    head = (f"Toy reproduction (JiT §3.7 / HDFM Fig. 3): {dist} in D dims, MLP 5×256, v-loss, "
            f"{setup['steps']} AdamW steps × batch {setup['batch_size']}, lr {setup['lr']}, JAX backend "
            f"(all targets × seeds vmapped); samplers: each path's own, {setup['sampler_steps']} steps.\n\n")
    table = head + "\n".join(parts)
    write_text(out / "table.md", table)
    figs = {p: str(plot_scatter(scatter, p, setup, out / f"scatter_{p}.png")) for p in setup["paths"]}
    if traj is not None:
        figs["trajectories"] = str(plot_trajectories(traj, out / "trajectories.png"))
    summary = {"setup": {k: list(v) if isinstance(v, tuple) else v for k, v in setup.items()}, "dist": dist,
               "timings": timings, "figures": figs, "table": str(out / "table.md")}
    write_text(out / "summary.json", json.dumps(summary, indent=2))
    print(table)
    return summary


def plot_scatter(scatter: dict, pname: str, setup: dict, dest: Path) -> Path:
    """Rows: target; columns: D; seed 0's samples projected to 2-D (JiT Fig. 2 layout)."""
    plt, _ = plots.pyplot()
    dims = setup["dims"]
    fig, axes = plt.subplots(len(TARGETS), len(dims), figsize=(2.2 * len(dims), 2.2 * len(TARGETS)), squeeze=False)
    for r, tg in enumerate(TARGETS):
        for c, d in enumerate(dims):
            ax = axes[r][c]
            pts = scatter[(pname, tg, d, setup["seeds"][0])]
            ax.scatter(pts[:, 0], pts[:, 1], s=1.5, alpha=0.5, color="C0" if tg == "x" else "C3")
            ax.set_xlim(-1.1, 1.1), ax.set_ylim(-1.1, 1.1), ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title(f"D = {d}", fontsize=9)
            if c == 0:
                ax.set_ylabel(f"{tg}-pred", fontsize=9)
    fig.suptitle(f"{pname}: samples projected by Pᵀ (v-loss, seed {setup['seeds'][0]})", fontsize=10)
    fig.tight_layout()
    return plots.save_figure(fig, dest)


def plot_trajectories(traj: dict, dest: Path) -> Path:
    """HDFM Fig. 4: particles along sampling in data space (Pᵀz) and in the DCT domain (coeffs 0, 1)."""
    plt, _ = plots.pyplot()
    z = traj["z"]  # (T, particles, D)
    data2 = z @ traj["P"]
    freq = np.stack([np.asarray(dct(zz.astype(np.float64))) for zz in z])
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
    for p in range(z.shape[1]):
        axes[0].plot(data2[:, p, 0], data2[:, p, 1], lw=1)
        axes[0].scatter(data2[-1, p, 0], data2[-1, p, 1], s=10)
        axes[1].plot(freq[:, p, 0], freq[:, p, 1], lw=1)
        axes[2].plot(traj["times"], freq[:, p, 1], lw=1)
    axes[0].set_title("data space (Pᵀ z_t)", fontsize=9)
    axes[1].set_title("DCT domain: coefficient 0 vs 1", fontsize=9)
    axes[2].set_title("DCT coefficient 1 vs t", fontsize=9)
    axes[2].set_xlabel("t")
    fig.suptitle(f"HDFM (x-pred) toy trajectories, D = {z.shape[2]}, {z.shape[1]} particles", fontsize=10)
    fig.tight_layout()
    return plots.save_figure(fig, dest)
