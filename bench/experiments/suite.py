"""The default suite (``hdfm-bench run``): four corruption paths, one backbone, one budget, MNIST.

Under the shared protocol every method is trained with the same ViT, batch, number of steps, optimiser,
EMA and data order (``protocol="native"``: each method's paper recipe at the same steps and batch,
training.protocols), then sampled (class-conditionally: 500 images, 50 per class) with its own published sampler and
evaluated (FID/KID/PR and class accuracy with the domain-mnist extractor against the 10k test
split, our spectral ratios, the spectral ratio along sampling). Writes under results/suite/: a grid
per method, the protocol-stamped rows (results.jsonl), the table (md/tex/csv) and the plots.
``--quick`` runs the same pipeline with a small budget.
"""
from __future__ import annotations

import contextlib
import json
import platform
import resource
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from hdfm_bench.core.config import RunConfig
from hdfm_bench.core.io import write_text, write_with
from hdfm_bench.core.signals import Termination
from hdfm_bench.evaluation import plots, tables
from hdfm_bench.evaluation.evaluate import evaluate_run
from hdfm_bench.evaluation.protocol import TABLE_METRICS, EvalSettings
from hdfm_bench.evaluation.store import FILE_NAME, ResultStore
from hdfm_bench.methods import recipe
from hdfm_bench.sampling.live import grid_hook
from hdfm_bench.sampling.output import write_samples
from hdfm_bench.training import protocols, train

#: the suite's four methods, each with its own recipe (target, loss, sampler and budget:
#: ``methods.recipe``); IHDM with its MNIST configuration (K = 100, σ_B,max = 20 px)
PATH_PARAMS: dict[str, dict] = {"noise_fm": {}, "hdfm": {}, "blurring_diffusion": {},
                                "ihdm": {"K": 100, "sigma_blur_max": 20.0}}
METHODS: dict[str, dict] = {
    m: {"path": m, "path_params": params, "target": recipe(m).target, "loss": recipe(m).loss}
    for m, params in PATH_PARAMS.items()}

# One budget for all. The backbone is the protocol's (training.protocols): under "shared" the ViT
# "tiny" (width 96, 4 blocks) with patch 7 → 4×4 tokens at 28×28, JiT's large-patch design, and a patch
# embedding as wide as a patch (bottleneck 64 ≥ 49). Measured on 2 cores: ~0.1 s per step at batch 96
# (patch 4, 7×7 tokens: ~0.2 s). README "The main job's wall time" and "Protocols".
BUDGET = {"task": "mnist", "lr": 2e-3, "warmup": 50, "ema_decays": [0.99, 0.999], "label_dropout": 0.1, "seed": 0}
FULL = {"steps": 700, "batch_size": 96, "checkpoint_every": 100}
QUICK = {"steps": 150, "batch_size": 64, "checkpoint_every": 50}

# Each method's own sampler at its own budget (the recipe: sampler=None); one guidance protocol for
# all: CFG 3.0 on JiT's interval, the slowest EMA.
CFG_SCALE = 3.0


def configs(quick: bool = False, out_dir: str = "runs", methods: list[str] | None = None,
            backend: str = "torch", compile: bool = False, protocol: str = "shared",
            tb: bool = True) -> dict[str, RunConfig]:
    """The run config of every chosen method under ``protocol`` (training.protocols)."""
    chosen = methods or list(METHODS)
    for m in chosen:
        if m not in METHODS:
            raise ValueError(f"unknown suite method '{m}'; known: {', '.join(METHODS)}")
    extra = QUICK if quick else FULL
    return {m: RunConfig.from_mapping({**BUDGET, **extra, **METHODS[m],
                                       **protocols.overrides(m, protocol, PATH_PARAMS[m]), "out_dir": out_dir,
                                       "backend": backend, "compile": compile, "tb": tb}, source="suite")
            for m in chosen}


def run_suite(quick: bool = False, results: str | Path = "results/suite", out_dir: str = "runs",
              methods: list[str] | None = None, n_samples: int = 100, n_eval: int | None = None,
              backend: str = "torch", compile: bool = False, termination: Termination | None = None,
              protocol: str = "shared", tb: bool = True) -> dict:
    """Train (or resume), sample and evaluate every method; write grids, the table and the plots.

    ``protocol``: ``shared`` (one backbone for all) or ``native`` (each method's paper recipe; rows
    labelled ``METHOD-native``; training.protocols). An unconditional run is sampled without CFG.

    ``backend="jax"`` trains and samples the same configs with the JAX backend (other run ids).
    ``compile``: train and sample the backbone under torch.compile (the same function, fused kernels;
    ~25 % faster on 2 cores). Off by default: inductor's CPU kernels are not bit-reproducible from one
    invocation to the next (two compiled 40-step trainings differ by ~1e-7, which Blurring Diffusion's
    and IHDM's samplers carry to ~0.1 and ~1 FID), while eager training and sampling are bit-equal run
    to run, so the committed suite is reproduced exactly (``run --check``).
    ``termination``: SIGTERM stops training at a step boundary with a checkpoint (core.signals).
    ``tb``: TensorBoard event files in each run (``tensorboard --logdir runs/``; changes no number)."""
    cfgs = configs(quick, out_dir, methods, backend, compile, protocol, tb)
    scope = termination.training if termination is not None else contextlib.nullcontext
    should_stop = termination.should_stop if termination is not None else None
    n_eval = n_eval or (100 if quick else 500)  # --quick: a first look in under 3 minutes
    results = Path(results) / ("quick" if quick else "")
    total = sum(c.steps for c in cfgs.values())
    summary = {"quick": quick, "protocol": protocol, "budget": {**BUDGET, **(QUICK if quick else FULL)}, "methods": {},
               **conditions(compile)}
    t_start = time.perf_counter()
    done_steps, eval_rows, histories = 0, [], {}
    with tqdm(total=total, desc="suite: training", unit="step", dynamic_ncols=True) as bar:
        for method, cfg in cfgs.items():
            name = protocols.label(method, protocol)
            bar.set_description(f"suite: training {name}")
            t0 = time.perf_counter()
            with scope():
                res = train(cfg, progress=False, should_stop=should_stop, on_checkpoint=grid_hook(cfg.run_dir()),
                            on_step=lambda s, loss: (bar.update(1), bar.set_postfix(loss=f"{loss:.4f}")))
            done_steps += cfg.steps
            bar.update(done_steps - bar.n)  # steps a resumed run did not redo
            # The run's own recorded training time (also right when this call only resumed/skipped it).
            t_train = res.record["budget"].get("wall_time_s") or (time.perf_counter() - t0)
            t1 = time.perf_counter()
            settings = EvalSettings(cfg_scale=CFG_SCALE if cfg.conditional else 1.0, ema=max(cfg.ema_decays),
                                    n=max(n_eval, n_samples), seed=0, reference_split="test", compile=compile)
            rows, out = evaluate_run(res.run_dir, settings, method=name, keep=n_samples)
            eval_rows += rows
            files = write_samples(out, results / name)
            t_sample = time.perf_counter() - t1
            histories[name] = res.record.get("history") or []
            summary["methods"][name] = {"run_dir": str(res.run_dir), "grid": str(files["grid"]),
                                        "objective": res.record.get("objective"),
                                        "final_loss": res.record.get("final_loss"),
                                        "parameters": res.record["budget"]["parameters"],
                                        "backbone": cfg.backbone, "conditional": cfg.conditional,
                                        "train_s": round(t_train, 1), "sample_s": round(t_sample, 1),
                                        "protocol": out["protocol"]}
            tqdm.write(f"[suite] {name}: trained in {t_train:.0f} s; sampled {settings.n} "
                       f"({out['protocol']['nfe']} NFE) and evaluated in {t_sample:.0f} s -> {files['grid']}")
    store = ResultStore(results / FILE_NAME)
    # a re-run replaces this invocation's measurements, never repeats them; a method's rows of a run whose
    # config has since changed go too (the folder holds one suite)
    store.replace(eval_rows, whole_methods=True)
    summary["tables"] = write_reports(store, results, [r["run_id"] for r in eval_rows], histories)
    summary["invocation_wall_s"] = round(time.perf_counter() - t_start, 1)  # resumed runs: sampling only
    summary["train_total_s"] = round(sum(m["train_s"] for m in summary["methods"].values()), 1)
    summary["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    summary["overview"] = str(overview(summary, results / "overview.png"))
    write_text(results / "summary.json", json.dumps(summary, indent=2, default=str))
    return summary


#: what must be equal for the suite's numbers to be equal to the last bit: torch's CPU kernels sum in an
#: order that depends on the thread count (and the compiled kernels, the torch build and the CPU's
#: instruction set); with all of these equal every step is deterministic and the tolerance is zero
CONDITIONS = ("threads", "compiled", "torch", "cpu")


def conditions(compiled: bool) -> dict[str, Any]:
    """This process's values of :data:`CONDITIONS` (recorded in summary.json)."""
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else \
        platform.processor()
    return {"threads": torch.get_num_threads(), "compiled": compiled, "torch": torch.__version__, "cpu": cpu}


def reference_snapshot(results: str | Path) -> dict[str, Any] | None:
    """The committed suite in ``results`` (rows and summary), read before a run overwrites it."""
    results = Path(results)
    if not (results / FILE_NAME).is_file() or not (results / "summary.json").is_file():
        return None
    return {"rows": ResultStore(results / FILE_NAME).rows(),
            "summary": json.loads((results / "summary.json").read_text())}


def check_reproduced(reference: dict[str, Any], rows: list[dict], summary: dict) -> tuple[list[str], bool]:
    """One line per method: 'reproduced' (every table metric equal to the last bit) or the differences.
    Returns (lines, ok); ok is False only when the conditions match and a number differs."""
    def table(rs):
        return {(r["method"], r["metric"]): r["value"] for r in rs if r["metric"] in TABLE_METRICS}

    ref, new = table(reference["rows"]), table(rows)
    before = {k: reference["summary"].get(k) for k in CONDITIONS}
    now = {k: summary.get(k) for k in CONDITIONS}
    changed = [f"{k} {before[k]} -> {now[k]}" for k in CONDITIONS if before[k] != now[k]]
    lines, ok = [], True
    for method in summary["methods"]:
        diffs = [f"{metric} {ref[(method, metric)]:.6g} -> {v:.6g}" for (m, metric), v in new.items()
                 if m == method and (m, metric) in ref and ref[(m, metric)] != v]
        missing = [metric for (m, metric) in new if m == method and (m, metric) not in ref]
        if not diffs and not missing:
            lines.append(f"{method}: reproduced (every number equal to the committed one)")
            continue
        ok = ok and bool(changed)
        why = (f"not expected to be bit-equal: {', '.join(changed)}" if changed
               else "NOT reproduced under the same conditions")
        lines.append(f"{method}: {'; '.join(diffs + [f'{m} not committed' for m in missing])} ({why})")
    return lines, ok


def write_reports(store, results: Path, run_ids: list[str], histories: dict) -> dict:
    """The suite's table (Markdown, LaTeX, CSV) and plots from this invocation's rows."""
    df = store.read()
    df = df[df["run_id"].isin(set(run_ids))]
    latest = df.groupby(["run_id", "metric"])["created"].transform("max") == df["created"]
    df = df[latest]
    out = {}
    cols = [c for c in TABLE_METRICS if c in set(df["metric"])]
    for fmt, ext in (("markdown", "md"), ("latex", "tex"), ("csv", "csv")):
        text, warnings = tables.make_table(df, fmt=fmt, columns=cols)
        if fmt == "markdown":
            proto = json.loads(df[df["metric"] == "fid"]["protocol_json"].iloc[0])
            caption = (f"Default suite, {proto['task']}: FID/KID/precision/recall with extractor "
                       f"{proto['extractor']} ({proto['extractor_hash']}), {proto['n_gen']} generated vs "
                       f"{proto['n_ref']} {proto['reference_split']} images; class_accuracy = domain "
                       f"classifier on class-conditional samples; r_hf and lsd = our spectral ratio "
                       f"(docs/methods.md §9; 1 and 0 are ideal). Samplers/NFE/CFG/EMA per method in summary.json.")
            text = f"{caption}\n\n{text}\n" + "".join(f"\n> {w}" for w in warnings)
            tqdm.write(text)
        out[fmt] = str(write_text(results / f"table.{ext}", text))
    for key in ("band_ratios", "trajectory", "fid_vs_nfe"):
        out[key] = str(plots.PLOTS[key](df, results / f"{key}.png"))
    if histories:
        out["losses"] = str(plots.plot_losses(histories, results / "losses.png"))
    return out


def overview(summary: dict, dest: Path) -> Path:
    """One figure: each method's grid titled with its objective, sampler and counted NFE."""
    from PIL import Image

    plt, _ = plots.pyplot()
    items = list(summary["methods"].items())
    fig, axes = plt.subplots(1, len(items), figsize=(4.2 * len(items), 4.9), squeeze=False)
    for ax, (_name, m) in zip(axes[0], items):
        ax.imshow(Image.open(m["grid"]), interpolation="nearest")
        p = m["protocol"]
        ax.set_title(f"{m['objective']}\n{p['sampler']}, {p['steps']} steps, NFE {p['nfe']}, "
                     f"CFG {p['cfg_scale']:g}, EMA {p['ema']}", fontsize=8)
        ax.axis("off")
    b = summary["budget"]
    params = next(iter(summary["methods"].values()))["parameters"]
    backbone = (f"same ViT ({params:,} params)" if summary.get("protocol", "shared") == "shared"
                else "each method's native recipe")
    fig.suptitle(f"hdfm-bench default suite: MNIST, {backbone}, {b['steps']} steps x batch {b['batch_size']}; "
                 "columns = class 0-9 (unconditional: unordered)", fontsize=10)
    fig.tight_layout()
    out = write_with(dest, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return out
