"""Host cost per training step: how much of a real training step is spent outside the backbone's
forward and backward (data, noise and time draws, the path, the loss, the optimizer, EMA, logging)."""
from __future__ import annotations

import copy
import datetime as _dt
import statistics
import tempfile
import time

import torch

from .harness import StepClock, interleaved_medians, machine, small_vit

PARTS = ("data", "draws", "path", "loss", "optimizer", "ema")


def host_benchmark(repeats: int = 1, steps: int = 130, batch: int = 64, label: str = "") -> tuple[str, list[dict]]:
    """Two views of the share of a training step spent outside the backbone (ViT small on MNIST, batch
    ``batch``): measured, 1 − bare / step, from the median step of a real ``train`` call (windows of 10
    steps, the first left out) and the median bare forward + backward of the same batch shape, timed at
    every window boundary of that run (interleaved: both see the same machine); and summed, the
    trainer's other parts timed alone (indexing the data, the draws, the path, the loss forward and
    backward, the AdamW step, two EMA updates) over their sum plus the bare step."""
    from hdfm_bench.core.config import RunConfig
    from hdfm_bench.methods import Objective, get_path
    from hdfm_bench.training import train

    rows = []
    for name in ("noise_fm", "hdfm"):
        model, x, y = small_vit(batch=batch)
        p = get_path(name)
        obj = Objective(p)
        z, t, eps = torch.randn_like(x), p.sample_t(torch.rand(batch)), torch.randn_like(x)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-9)
        emas = [copy.deepcopy(model).requires_grad_(False) for _ in range(2)]
        data = torch.zeros(60_000, *x.shape[1:])

        def bare():
            model.zero_grad(set_to_none=True)
            model(z, t, y).square().mean().backward()

        @torch.no_grad()
        def ema():
            for e in emas:
                for pe, pm in zip(e.parameters(), model.parameters()):
                    pe.lerp_(pm, 0.01)

        raw = model(z, t, y).detach().requires_grad_()  # the loss's backward (through the path) counts too
        parts = {"bare": bare, "data": lambda: data[torch.randint(60_000, (batch,))],
                 "draws": lambda: (torch.randn_like(x), p.sample_t(torch.rand(batch)), torch.rand(batch) < 0.1),
                 "path": lambda: p.corrupt(x, eps, t), "loss": lambda: obj.loss(raw, x, eps, t, z).mean().backward(),
                 "optimizer": opt.step, "ema": ema}
        before = interleaved_medians(parts, max(5, repeats * 10), block=3, warmup=1)

        def timed_bare() -> float:
            bare()  # once to bring the reference model back into the caches
            t0 = time.perf_counter()
            bare()
            return time.perf_counter() - t0

        clock = StepClock(every=10, skip=1, between=timed_bare)
        with tempfile.TemporaryDirectory() as tmp:
            cfg = RunConfig.from_mapping(dict(task="mnist", path=name, backbone="vit",
                                              backbone_params={"size": "small", "patch": 4}, steps=steps,
                                              batch_size=batch, ema_decays=[0.99, 0.999], checkpoint_every=steps,
                                              out_dir=tmp))
            train(cfg, progress=False, on_step=clock)
        bare_s, step = statistics.median(clock.between_seconds[clock.skip:]), clock.step_seconds()
        host = sum(before[k] for k in PARTS)
        rows.append({"path": name, "step_ms": step * 1e3, "bare_ms": bare_s * 1e3, "measured": 1 - bare_s / step,
                     "summed": host / (host + bare_s), **{f"{k}_ms": before[k] * 1e3 for k in PARTS}})
    body = [f"## Host cost per training step{(' (' + label + ')') if label else ''}", "",
            f"Machine: {machine()}. Measured {_dt.date.today().isoformat()}. ViT small (width 192, 6 blocks, patch "
            f"4) on MNIST 1×28×28, batch {batch}, EMA 0.99 and 0.999. *Measured*: 1 − bare / step, the median "
            f"step of a {steps}-step real `train` run (windows of 10 steps, the first left out) against the median "
            "bare backbone forward + backward of the same batch shape, timed at every window boundary of that run "
            "(interleaved with it, so both see the same machine). *Summed*: the trainer's other parts timed alone "
            "(the loss with its backward, which runs through the path's conversions), over their sum plus the bare "
            "step.", "",
            "| path | trainer step ms | bare fwd+bwd ms | measured share | summed share | data | draws | path | "
            "loss | AdamW | 2 EMAs |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    body += [f"| {r['path']} | {r['step_ms']:.0f} | {r['bare_ms']:.0f} | {100 * r['measured']:.1f} % | "
             f"{100 * r['summed']:.1f} % | " + " | ".join(f"{r[k + '_ms']:.2f}" for k in PARTS) + " |" for r in rows]
    body.append("")
    body.append("Parts in ms per step.")
    return "\n".join(body), rows


__all__ = ["host_benchmark"]
