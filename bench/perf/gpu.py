"""GPU throughput of a ViT-B-size backbone per method (only where CUDA is available)."""
from __future__ import annotations

import datetime as _dt

import torch

from hdfm_bench.methods import Objective, get_path, get_sampler, recipe, validation

from .harness import BENCH_PATHS, interleaved, small_vit


def gpu_benchmark(repeats: int = 10, batch: int = 64) -> tuple[str, list[dict]]:
    """Training and sampling images/s per method for a ViT-B-size backbone on 3×64×64 (bf16), and the
    bare backbone step; only on a machine with a CUDA GPU."""
    title = "GPU throughput, ViT-B size"
    if not torch.cuda.is_available():
        return f"## {title}\n\nNot measured: no CUDA GPU on this machine (`torch.cuda.is_available()` is False). " \
               "Run `hdfm-bench perf --only gpu` on a GPU node.", []
    model, x, y = small_vit(shape=(3, 64, 64), size="B", patch=4, batch=batch, classes=1000, device="cuda")
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
    for name, params in BENCH_PATHS[:4]:
        r = recipe(name)
        path, smp, tg = get_path(name, **params), get_sampler(r.sampler, steps=10), r.target
        obj = Objective(path)

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
    tr = interleaved(train_fns, repeats, block=2)
    with torch.no_grad():
        sm = interleaved(sample_fns, max(3, repeats // 3), block=1)
    name = torch.cuda.get_device_name()
    body = [f"## {title}", "", f"Device: {name}; torch {torch.__version__}. Measured {_dt.date.today().isoformat()}, "
            f"ViT B (width 768, 12 blocks) patch 4 on 3×64×64, batch {batch}, bf16 autocast; sampling 10 steps.", "",
            "| method | train images/s | vs bare step | sampling images/s (10 steps) | NFE |",
            "|---|---:|---:|---:|---:|",
            f"| bare backbone step | {batch / tr['bare']:.0f} | — | — | — |"]
    rows = []
    for k in sample_fns:
        rows.append({"path": k, "train_ips": batch / tr[k], "sample_ips": batch / sm[k], "nfe": nfe[k]})
        body.append(f"| {k} | {batch / tr[k]:.0f} | {tr['bare'] / tr[k]:.2f}× | {batch / sm[k]:.0f} | {nfe[k]} |")
    return "\n".join(body), rows
