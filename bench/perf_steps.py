"""Perf harness sections about the framework's own cost (issue 7): what the path, the objective and
the samplers add to the network, the default suite's wall time and memory, and GPU throughput.

Every number is a median of interleaved repetitions (``bench.perf.interleaved_medians``) taken in
one run on one machine, next to its bare-network baseline; nothing here is a test.
"""
from __future__ import annotations

import datetime as _dt
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

# (path, path parameters, target, sampler) — each method's default recipe and sampler
METHODS = [("noise_fm", {}, "x", "heun"), ("hdfm", {}, "x", "hdfm_exact"),
           ("blurring_diffusion", {}, "eps", "posterior"), ("hdfm_code", {}, "x", "hdfm_adaptive"),
           ("ihdm", {"K": 10}, "prev_mean", "ihdm_delta"), ("cold_blur", {"T": 10}, "x", "cold_alg2")]


def _setup(shape=(1, 28, 28), size="small", patch=4, batch=64, classes=10, device="cpu"):
    from .backbones import build_backbone

    torch.manual_seed(0)
    model = build_backbone("vit", shape=shape, num_classes=classes, size=size, patch=patch).to(device)
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(batch, *shape, generator=g) * 2 - 1).to(device)
    y = torch.randint(classes, (batch,), generator=g).to(device)
    return model, x, y


def _header(title: str, what: str, repeats: int) -> list[str]:
    from .perf import machine

    return [f"## {title}", "", f"Machine: {machine()}. Measured {_dt.date.today().isoformat()}, median of "
            f"{repeats} interleaved calls each. {what}", ""]


def overhead_benchmark(repeats: int = 30, batch: int = 64) -> tuple[str, list[dict]]:
    """Training step of each path (draws + corrupt + objective loss + backward + AdamW) vs the bare
    backbone step (forward on a fixed input, MSE to a fixed target, backward, AdamW)."""
    from methods import Objective, get_path, validation

    model, x, y = _setup(batch=batch)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    z_fixed, t_fixed, target = torch.randn_like(x), torch.rand(batch), torch.randn_like(x)

    def step(loss):
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    fns = {"bare": lambda: step(((model(z_fixed, t_fixed, y) - target) ** 2).mean())}
    for name, params, tg, _ in METHODS:
        path = get_path(name, **params)
        obj = Objective(path, tg)

        def full(path=path, obj=obj):
            eps = torch.randn_like(x)
            t = path.sample_t(torch.rand(batch))
            with validation(False):  # the trainer validates the first step only
                z = path.corrupt(x, eps, t)
                step(obj.loss(model(z, t, y), x, eps, t, z).mean())
        fns[name] = full
    med = _interleaved(fns, repeats)
    bare = med.pop("bare")
    rows = [{"path": k, "ms": v * 1e3, "overhead": v / bare - 1} for k, v in med.items()]
    body = _header("Path + loss overhead per training step (issue: paper reproductions)",
                   f"ViT small (width 192, 6 blocks, patch 4) on 1×28×28, batch {batch}, float32, AdamW.", repeats)
    body += ["| step | ms | overhead vs bare |", "|---|---:|---:|", f"| bare backbone step | {bare * 1e3:.1f} | — |"]
    body += [f"| {r['path']} (draws, corrupt, objective loss) | {r['ms']:.1f} | {100 * r['overhead']:+.1f} % |"
             for r in rows]
    worst = max(r["overhead"] for r in rows)
    body += ["", f"Goal ≤ 5 % — {'met' if worst <= 0.05 else 'NOT met'} (worst {100 * worst:+.1f} %). Differences "
             "of ±2 % are within this machine's run-to-run noise."]
    return "\n".join(body), rows


def sampler_benchmark(repeats: int = 10, batch: int = 64, steps: int = 10) -> tuple[str, list[dict]]:
    """Wall time per network evaluation inside each sampler vs one bare forward of the same batch."""
    from methods import get_path, get_sampler

    model, x, y = _setup(batch=batch)
    model.eval()
    den = lambda z, t: model(z, t, y)  # noqa: E731
    z_fixed, t_fixed = torch.randn_like(x), torch.rand(batch)
    fns, nfe = {"bare": lambda: den(z_fixed, t_fixed)}, {}
    for name, params, tg, smp_name in METHODS:
        path = get_path(name, **params)
        smp = get_sampler(smp_name, **({} if smp_name in ("ihdm_delta", "cold_alg2") else {"steps": steps}))
        eps = torch.randn_like(x)
        z0 = path.prior(eps, x if path.data_prior else None)
        noise = lambda i: torch.randn_like(x)  # noqa: E731
        fns[name] = lambda smp=smp, path=path, z0=z0, tg=tg: smp.sample(path, den, z0, tg, noise=noise)
        nfe[name] = smp.expected_nfe(path)
    with torch.no_grad():
        med = _interleaved(fns, repeats, block=2)
    bare = med.pop("bare")
    rows = [{"path": k, "sampler": s, "nfe": nfe[k], "per_nfe_ms": med[k] / nfe[k] * 1e3,
             "overhead": med[k] / nfe[k] / bare - 1} for k, _, _, s in METHODS]
    body = _header("Sampler overhead per network evaluation (issue: paper reproductions)",
                   f"ViT small, batch {batch}, no grad, float32; {steps} steps (level samplers: 10 levels).", repeats)
    body += ["| path | sampler | NFE | ms per NFE | overhead vs bare forward |", "|---|---|---:|---:|---:|",
             f"| — | bare forward | 1 | {bare * 1e3:.2f} | — |"]
    body += [f"| {r['path']} | {r['sampler']} | {r['nfe']} | {r['per_nfe_ms']:.2f} | {100 * r['overhead']:+.1f} % |"
             for r in rows]
    worst = max(r["overhead"] for r in rows)
    body += ["", f"Goal ≤ 5 % — {'met' if worst <= 0.05 else 'NOT met'} (worst {100 * worst:+.1f} %)."]
    return "\n".join(body), rows


def suite_benchmark(repeats: int = 1, quick: bool = False) -> tuple[str, list[dict]]:
    """``hdfm-bench run`` from nothing (fresh run folder) in a child process: wall time and peak RSS."""
    walls, peaks = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "bench.cli", "run", "--results", f"{tmp}/results", "--out-dir", f"{tmp}/runs"]
            t0 = time.perf_counter()
            subprocess.run(cmd + (["--quick"] if quick else []), check=True, capture_output=True)
            walls.append(time.perf_counter() - t0)
            peaks.append(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)  # KiB → MiB
    wall, peak = statistics.median(walls), max(peaks)
    body = _header("Default suite: wall time and peak memory (issue: paper reproductions)",
                   f"`hdfm-bench run{' --quick' if quick else ''}` from an empty run folder (training, sampling, "
                   "metrics, tables, figures), one child process; MNIST and classifier caches warm.", repeats)
    body += ["| what | value |", "|---|---:|", f"| wall time | {wall / 60:.1f} min ({wall:.0f} s) |",
             f"| peak resident memory | {peak:,.0f} MiB |", "",
             f"Goal ≤ 15 min on 2 cores (aim 10) — {'met' if wall <= 900 else 'NOT met'}"
             f"{'' if quick else (' (aim met)' if wall <= 600 else ' (aim of 10 min NOT met)')}."]
    return "\n".join(body), [{"wall_s": wall, "peak_mib": peak}]


def gpu_benchmark(repeats: int = 10, batch: int = 64) -> tuple[str, list[dict]]:
    """Training and sampling images/s per method for a ViT-B-size backbone on 3×64×64 (bf16), and the
    bare backbone step; only on a machine with a CUDA GPU."""
    title = "GPU throughput, ViT-B size (issue: paper reproductions)"
    if not torch.cuda.is_available():
        return f"## {title}\n\nNot measured: no CUDA GPU on this machine (`torch.cuda.is_available()` is False). " \
               "Run `hdfm-bench perf --only gpu` on a GPU node.", []
    from methods import Objective, get_path, get_sampler, validation

    model, x, y = _setup(shape=(3, 64, 64), size="B", patch=4, batch=batch, classes=1000, device="cuda")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def sync(fn):
        def run():
            with torch.autocast("cuda", dtype=torch.bfloat16):
                fn()
            torch.cuda.synchronize()
        return run

    def step(loss):
        opt.zero_grad(set_to_none=True)
        loss.float().backward()
        opt.step()

    z_fixed, t_fixed = torch.randn_like(x), torch.rand(batch, device="cuda")
    train_fns = {"bare": sync(lambda: step(((model(z_fixed, t_fixed, y) - x) ** 2).mean()))}
    sample_fns, nfe = {}, {}
    for name, params, tg, smp_name in METHODS[:4]:
        path, smp = get_path(name, **params), get_sampler(smp_name, steps=10)
        obj = Objective(path, tg)

        def full(path=path, obj=obj):
            eps, t = torch.randn_like(x), path.sample_t(torch.rand(batch, device="cuda"))
            with validation(False):
                z = path.corrupt(x, eps, t)
                step(obj.loss(model(z, t, y).float(), x, eps, t, z).mean())
        train_fns[name] = sync(full)
        z0 = path.prior(torch.randn_like(x), None)
        sample_fns[name] = sync(lambda smp=smp, path=path, z0=z0, tg=tg: smp.sample(
            path, lambda z, t: model(z, t, y).float(), z0, tg, noise=lambda i: torch.randn_like(x)))
        nfe[name] = smp.expected_nfe(path)
    tr = _interleaved(train_fns, repeats, block=2)
    with torch.no_grad():
        sm = _interleaved(sample_fns, max(3, repeats // 3), block=1)
    name = torch.cuda.get_device_name()
    body = [f"## {title}", "", f"Device: {name}; torch {torch.__version__}. Measured {_dt.date.today().isoformat()}, "
            f"ViT B (width 768, 12 blocks) patch 4 on 3×64×64, batch {batch}, bf16 autocast; sampling 10 steps.", "",
            "| method | train images/s | vs bare step | sampling images/s (10 steps) | NFE |", "|---|---:|---:|---:|---:|",
            f"| bare backbone step | {batch / tr['bare']:.0f} | — | — | — |"]
    rows = []
    for k in sample_fns:
        rows.append({"path": k, "train_ips": batch / tr[k], "sample_ips": batch / sm[k], "nfe": nfe[k]})
        body.append(f"| {k} | {batch / tr[k]:.0f} | {tr['bare'] / tr[k]:.2f}× | {batch / sm[k]:.0f} | {nfe[k]} |")
    return "\n".join(body), rows


def _interleaved(fns, repeats: int, block: int = 5) -> dict[str, float]:
    from .perf import interleaved_medians

    return interleaved_medians(fns, repeats, block=block, warmup=1)


__all__ = ["overhead_benchmark", "sampler_benchmark", "suite_benchmark", "gpu_benchmark"]
