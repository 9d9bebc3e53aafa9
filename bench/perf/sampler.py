"""Sampler overhead per network evaluation: each recipe's sampler against one bare forward."""
from __future__ import annotations

import torch

from hdfm_bench.methods import get_path, get_sampler, recipe

from .harness import BENCH_PATHS, interleaved, section_header, small_vit


def sampler_benchmark(repeats: int = 10, batch: int = 64, steps: int = 10) -> tuple[str, list[dict]]:
    """Wall time per network evaluation inside each sampler vs one bare forward of the same batch."""
    model, x, y = small_vit(batch=batch)
    model.eval()
    den = lambda z, t: model(z, t, y)
    z_fixed, t_fixed = torch.randn_like(x), torch.rand(batch)
    fns, nfe = {"bare": lambda: den(z_fixed, t_fixed)}, {}
    samplers = {}
    for name, params in BENCH_PATHS:
        path, r = get_path(name, **params), recipe(name)
        tg, smp_name = r.target, r.sampler
        smp = get_sampler(smp_name, **({"steps": steps} if r.steps is not None else {}))
        samplers[name] = smp_name
        eps = torch.randn_like(x)
        z0 = path.prior(eps, x if path.data_prior else None)
        noise = lambda i: torch.randn_like(x)
        fns[name] = lambda smp=smp, path=path, z0=z0, tg=tg: smp.sample(path, den, z0, tg, noise=noise)
        nfe[name] = smp.expected_nfe(path)
    with torch.no_grad():
        med = interleaved(fns, repeats, block=2)
    bare = med.pop("bare")
    rows = [{"path": k, "sampler": s, "nfe": nfe[k], "per_nfe_ms": med[k] / nfe[k] * 1e3,
             "overhead": med[k] / nfe[k] / bare - 1} for k, s in samplers.items()]
    body = section_header("Sampler overhead per network evaluation",
                   f"ViT small, batch {batch}, no grad, float32; {steps} steps (level samplers: 10 levels).", repeats)
    body += ["| path | sampler | NFE | ms per NFE | overhead vs bare forward |", "|---|---|---:|---:|---:|",
             f"| — | bare forward | 1 | {bare * 1e3:.2f} | — |"]
    body += [f"| {r['path']} | {r['sampler']} | {r['nfe']} | {r['per_nfe_ms']:.2f} | {100 * r['overhead']:+.1f} % |"
             for r in rows]
    worst = max(r["overhead"] for r in rows)
    body += ["", f"Goal ≤ 5 % — {'met' if worst <= 0.05 else 'NOT met'} (worst {100 * worst:+.1f} %)."]
    return "\n".join(body), rows
