"""``--backend jax``: train one RunConfig with the equinox twin of its backbone and optax AdamW.

Everything that defines the run is shared with the torch trainer (``training.rules``, ``.records``,
``.checkpoint``): the config and its run id (``backend`` is part of it), the task data and its order
(the same permutations), the path and objective code (``methods``, on jax arrays), the initial
weights (the torch model built for the seed, copied into its twin), the optimizer recipe (AdamW,
warm-up, global-norm clip; ``training.jax_vmapped.make_optimizer``), the EMA rule and the checkpoint
/ run-record format — weights are saved under the torch model's parameter names, so ``load_run`` and
every evaluation tool read a JAX run unchanged. What differs: noise, times and label dropout come
from ``jax.random`` (fold_in(PRNGKey(seed + 1), step)), and one step is one jitted function."""
from __future__ import annotations

import copy
import time
from collections.abc import Callable

import numpy as np
import torch

from hdfm_bench.backbones.jax import state_dict, twin
from hdfm_bench.core.config import RunConfig
from hdfm_bench.core.rundir import checkpoint_path

from . import checkpoint as ckpt
from .build import build
from .checkpoint import check_not_older, checkpoint_payload, keep_checkpoint, load_own_checkpoint
from .distributed import rank_and_world
from .records import budget, non_finite_failure, owned_run, record, record_done, record_start
from .rules import Interrupted, Preempted, TrainResult, batch_indices, ema_decay, kept, lr_at
from .tblog import TrainLog


def train_jax(cfg: RunConfig, *, progress: bool = True, stop_at: int | None = None,
              on_step: Callable[[int, float], None] | None = None,
              should_stop: Callable[[], bool] | None = None,
              on_checkpoint: Callable[[int, TrainLog], None] | None = None):
    """Train (or resume) ``cfg`` with the JAX backend; same contract and outputs as ``hdfm_bench.training.train``."""
    if rank_and_world()[1] > 1:
        raise ValueError("backend jax: data-parallel (multi-process) training is torch-only")
    task, path, objective, torch_model = build(cfg)
    model = twin(torch_model)
    run_dir = cfg.run_dir()
    with owned_run(run_dir, cfg):
        return _train_owned(cfg, task, path, objective, torch_model, model, run_dir, progress=progress,
                            stop_at=stop_at, on_step=on_step, should_stop=should_stop, on_checkpoint=on_checkpoint)


def _train_owned(cfg, task, path, objective, torch_model, model, run_dir, *, progress, stop_at, on_step,
                 should_stop, on_checkpoint):
    """The JAX loop inside the run's lock (records.owned_run)."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import optax
    from tqdm.auto import tqdm

    from hdfm_bench.methods import validation

    from .jax_vmapped import make_optimizer

    x_train, y_train = task.load("train")
    y_np = y_train.numpy() if y_train is not None else None
    null = task.num_classes if cfg.conditional and task.num_classes else None
    opt = make_optimizer(cfg.lr, cfg.warmup, cfg.beta1, cfg.beta2, cfg.weight_decay, cfg.grad_clip)
    opt_state = opt.init(model)
    emas = dict.fromkeys(cfg.ema_decays, model)
    gen = torch.Generator().manual_seed(cfg.seed + 1)  # only for task augmentations (hflip)
    start, history, wall, ema_updates = 0, [], 0.0, 0
    n_params = sum(p.numel() for p in torch_model.parameters())

    ck = checkpoint_path(run_dir)
    if ck.exists():
        state = load_own_checkpoint(ck, cfg)
        model = _load(torch_model, state["model"])
        emas = {d: _load(torch_model, state["ema"][repr(d)]) for d in cfg.ema_decays}
        leaves, treedef = jax.tree_util.tree_flatten(opt_state)
        saved = state["optimizer"]["leaves"]
        if len(saved) != len(leaves):
            raise ckpt.CheckpointError(f"{ck}: optimizer state has {len(saved)} arrays, expected {len(leaves)}")
        opt_state = jax.tree_util.tree_unflatten(treedef, [jnp.asarray(v.numpy()) for v in saved])
        gen.set_state(state["rng"]["generator"])
        start, history, wall = int(state["step"]), list(state["history"]), float(state["wall_time"])
        ema_updates = int(state["ema_updates"])

    spent = budget(cfg, n_params, torch_model.config, task.describe())
    record_start(run_dir, cfg, start, spent, objective)

    def save_checkpoint(step: int) -> None:
        leaves = jax.tree_util.tree_leaves(opt_state)
        check_not_older(ck, step)
        log.flush()  # every logged step up to this checkpoint is on disk before it is (see tblog)
        ckpt.save(ck, checkpoint_payload(cfg, step, model=state_dict(model),
                                         ema={d: state_dict(e) for d, e in emas.items()}, ema_updates=ema_updates,
                                         optimizer={"leaves": [torch.from_numpy(np.array(v)) for v in leaves]},
                                         rng={"generator": gen.get_state()}, history=history, wall_time=wall))
        record(run_dir, cfg, step=step)
        keep_checkpoint(run_dir, cfg, step)

    @eqx.filter_jit
    def train_step(model, opt_state, emas, decays, x, y, step):
        key = jax.random.fold_in(jax.random.PRNGKey(cfg.seed + 1), step)
        k_eps, k_t, k_drop = jax.random.split(key, 3)
        eps = jax.random.normal(k_eps, x.shape)
        t = path.sample_t(jax.random.uniform(k_t, (x.shape[0],)))
        if y is not None:
            y = jnp.where(jax.random.uniform(k_drop, y.shape) < cfg.label_dropout, null, y)

        def loss_of(m):
            z = path.corrupt(x, eps, t)
            return objective.loss(m(z, t, y), x, eps, t, z).mean()

        loss, grads = eqx.filter_value_and_grad(loss_of)(model)
        updates, opt_state = opt.update(grads, opt_state, model)
        model = eqx.apply_updates(model, updates)
        emas = [jax.tree_util.tree_map(lambda e, p, d=decays[i]: e + (1 - d) * (p - e), ema, model)
                for i, ema in enumerate(emas)]
        return model, opt_state, emas, loss, optax.tree.norm(grads)

    bar = tqdm(total=cfg.steps, initial=start, disable=not progress, desc=f"{cfg.run_id()} [jax]", unit="step",
               dynamic_ncols=True, leave=False)
    last_finite = history[-1][1] if history else float("nan")
    order = list(cfg.ema_decays)
    log = TrainLog(run_dir, cfg.tb, start)
    try:
        with validation(False):  # traced arrays: the loss itself is checked every step
            for step in range(start, cfg.steps):
                if stop_at is not None and step == stop_at:
                    raise Interrupted(f"stopped before step {step}")
                t0 = time.perf_counter()
                idx = batch_indices(cfg, len(x_train), step)
                x = x_train[idx]
                if task.augments:
                    x = task.augment(x, torch.rand(len(idx), generator=gen))
                x = jnp.asarray(x.numpy())
                y = jnp.asarray(y_np[idx.numpy()]) if null is not None else None
                # arrays, not Python numbers: filter_jit treats Python scalars as static (a recompile per step)
                decays = jnp.asarray([ema_decay(d, ema_updates) for d in order], dtype=jnp.float32)
                new = train_step(model, opt_state, [emas[d] for d in order], decays, x, y, jnp.asarray(step))
                loss = float(new[3])
                if not np.isfinite(loss):
                    raise non_finite_failure(run_dir, cfg, step, last_finite)
                model, opt_state, ema_list = new[0], new[1], new[2]
                emas, ema_updates, last_finite = dict(zip(order, ema_list)), ema_updates + 1, loss
                history.append([step + 1, loss])
                wall += time.perf_counter() - t0
                log.steps(step + 1, [(loss, lr_at(cfg.lr, cfg.warmup, step), float(new[4]))],
                          time.perf_counter() - t0, cfg.batch_size)
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}")
                if on_step is not None:
                    on_step(step + 1, loss)
                stop = should_stop is not None and should_stop()
                if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps or stop:
                    save_checkpoint(step + 1)
                if on_checkpoint is not None and kept(cfg, step + 1):
                    on_checkpoint(step + 1, log)
                    log.flush()
                if stop and step + 1 < cfg.steps:
                    raise Preempted(step + 1)
    finally:
        bar.close()
        log.close()
    rec = record_done(run_dir, cfg, spent, wall, history)
    ema_models = {}
    for d, e in emas.items():
        ema_models[d] = copy.deepcopy(torch_model).eval()
        ema_models[d].load_state_dict(state_dict(e))
    torch_model.load_state_dict(state_dict(model))
    return TrainResult(run_dir, torch_model.eval(), ema_models, rec)


def _load(torch_model, weights: dict):
    """A twin holding ``weights`` (a torch state_dict), built through the torch model."""
    torch_model.load_state_dict(weights)
    return twin(torch_model)


__all__ = ["train_jax"]
