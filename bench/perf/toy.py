"""Toy: the same 9-model work as one vmapped JAX program and as 9 sequential torch runs."""
from __future__ import annotations

import datetime as _dt
import statistics
import tempfile
import time

from hdfm_bench.core.config import RunConfig
from hdfm_bench.methods import get_path
from hdfm_bench.tasks import get_task
from hdfm_bench.training import train

from .harness import machine


def toy_benchmark(repeats: int = 1, dim: int = 16, steps: int = 300, batch: int = 128) -> tuple[str, list[dict]]:
    """The same toy work both ways: 3 targets × 3 seeds MLPs on one (path, D), v-loss.

    JAX: one vmapped, jitted program (``training.jax_vmapped.train_models``), compile included.
    torch: the torch trainer (``training.train``) run sequentially, one run per model, with its
    usual per-step work (EMA 0.999, checkpoint at the end). Same models, steps and batch size.
    """
    import jax.numpy as jnp  # the JAX stack only for this section

    from hdfm_bench.training.jax_vmapped import train_models

    targets, seeds = ["x", "eps", "v"], [0, 1, 2]
    task = get_task("toy", dist="spiral", dim=dim)
    data = jnp.asarray(task.load("train")[0].numpy())
    jax_t, torch_t = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        _, losses, _ = train_models(get_path("noise_fm"), targets, seeds, data, steps=steps, batch_size=batch,
                                    lr=1e-3, warmup=20)
        losses.block_until_ready()
        jax_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            for tg in targets:
                for seed in seeds:
                    cfg = RunConfig.from_mapping(dict(
                        task="toy", task_params={"dim": dim, "dist": "spiral"}, path="noise_fm", target=tg, loss="v",
                        backbone="mlp", conditional=False, steps=steps, batch_size=batch, lr=1e-3, warmup=20,
                        ema_decays=[0.999], seed=seed, checkpoint_every=steps, out_dir=tmp))
                    train(cfg, progress=False)
        torch_t.append(time.perf_counter() - t0)
    j, t = statistics.median(jax_t), statistics.median(torch_t)
    work = f"9 MLPs (5×256; x/ε/v × 3 seeds), noise_fm, D = {dim}, {steps} steps × batch {batch}"
    body = "\n".join([
        "## Toy: vmapped JAX vs sequential torch",
        "",
        f"Machine: {machine()}. Measured {_dt.date.today().isoformat()}, "
        f"median of {repeats}. Work: {work}.",
        "",
        "| backend | how | wall s |",
        "|---|---|---:|",
        f"| JAX (equinox + optax) | all 9 models in one jitted `lax.scan`, vmapped; compile included | {j:.1f} |",
        f"| torch | the torch trainer, 9 runs one after the other | {t:.1f} |",
        "",
        f"Ratio torch / JAX = **{t / j:.2f}×** (goal ≥ 5× — {'met' if t / j >= 5 else 'NOT met'}). The work is "
        "compute-bound on 2 cores (≈0.3 GFLOP per model step, 5×256 MLP with a 256-d time embedding at batch "
        f"{batch}): vmapping removes per-step Python and launch overhead, not FLOPs.",
    ])
    return body, [{"backend": "jax", "seconds": j}, {"backend": "torch", "seconds": t}]
