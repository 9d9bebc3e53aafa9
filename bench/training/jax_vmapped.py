"""The JAX training loop: optax AdamW under jit, the whole run one ``lax.scan``, vmapped over models.

The loss is the same ``methods`` objective the torch trainer uses (Array API on jax arrays). The
optimizer mirrors the torch trainer: AdamW (β = (beta1, beta2), ε = 1e-8, decoupled weight decay)
with the same linear warm-up, after global-norm gradient clipping.

``train_models`` trains M models at once — one per (seed, target) — as one vmapped, jitted program:
models that share shapes (same path and D) but differ in seed or prediction target. The target
is selected per model inside the vmapped loss with ``lax.switch`` over the loss only (under vmap
every branch is computed and one is kept; the network runs once, the branches are cheap).
"""
from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import optax

from hdfm_bench.backbones.jax.mlp import ToyMLP, init_mlp
from hdfm_bench.methods import Objective, validation

from .rules import lr_at


def make_optimizer(lr: float, warmup: int = 0, beta1: float = 0.9, beta2: float = 0.95, weight_decay: float = 0.0,
                   grad_clip: float = 1.0) -> optax.GradientTransformation:
    """AdamW with the shared warm-up (``rules.lr_at``), after clipping the global gradient norm (0 = off)."""
    schedule = (lambda count: lr_at(lr, warmup, count)) if warmup else lr
    parts = [optax.clip_by_global_norm(grad_clip)] if grad_clip else []
    parts.append(optax.adamw(schedule, b1=beta1, b2=beta2, eps=1e-8, weight_decay=weight_decay))
    return optax.chain(*parts)


def loss_fn(model: ToyMLP, objective: Objective, x: jax.Array, eps: jax.Array, t: jax.Array) -> jax.Array:
    """Mean per-sample loss of one model on one batch (the torch trainer's objective, in JAX)."""
    z = objective.path.corrupt(x, eps, t)
    return objective.loss(model(z, t), x, eps, t, z).mean()


def train_models(path, targets: Sequence[str], seeds: Sequence[int], data: jax.Array, *, steps: int,
                 batch_size: int, lr: float = 1e-3, warmup: int = 0, grad_clip: float = 1.0,
                 loss_space: str = "v", width: int = 256, depth: int = 5, beta1: float = 0.9,
                 beta2: float = 0.95) -> tuple[ToyMLP, jax.Array, list[tuple[str, int]]]:
    """Train one MLP per (target, seed) — all at once. Returns (stacked models, losses (M, steps), ids).

    Model m is initialised from PRNGKey(seed) and draws its batches (indices into ``data``, ε, t)
    from fold_in(PRNGKey(seed + 10⁶), step): the same seed gives the same init and data for every
    target, so targets are compared on identical draws.
    """
    ids = [(tg, s) for tg in targets for s in seeds]
    objectives = [Objective(path, tg, loss_space) for tg in targets]
    t_index = jnp.asarray([targets.index(tg) for tg, _ in ids])
    seed_arr = jnp.asarray([s for _, s in ids], dtype=jnp.uint32)
    dim = data.shape[1]
    models = jax.vmap(lambda s: init_mlp(jax.random.PRNGKey(s), dim, width, depth))(seed_arr)
    opt = make_optimizer(lr, warmup, beta1, beta2, 0.0, grad_clip)
    states = jax.vmap(opt.init)(models)

    def step_one(model, state, ti, seed, step):
        key = jax.random.fold_in(jax.random.PRNGKey(seed + 1_000_000), step)
        k_idx, k_eps, k_t = jax.random.split(key, 3)
        x = data[jax.random.randint(k_idx, (batch_size,), 0, data.shape[0])]
        eps = jax.random.normal(k_eps, x.shape)
        t = path.sample_t(jax.random.uniform(k_t, (batch_size,)))
        z = path.corrupt(x, eps, t)
        # the network runs once; only the loss is switched (under vmap lax.switch evaluates every
        # branch, so switching over the whole loss_fn would run the network once per target)
        branches = [lambda raw, o=o: o.loss(raw, x, eps, t, z).mean() for o in objectives]
        loss, grads = jax.value_and_grad(lambda m: jax.lax.switch(ti, branches, m(z, t)))(model)
        updates, state = opt.update(grads, state, model)
        return optax.apply_updates(model, updates), state, loss

    @jax.jit
    def run(models, states):
        def body(carry, step):
            m, s = carry
            m, s, loss = jax.vmap(step_one, in_axes=(0, 0, 0, 0, None))(m, s, t_index, seed_arr, step)
            return (m, s), loss
        (models, states), losses = jax.lax.scan(body, (models, states), jnp.arange(steps))
        return models, losses.T

    with validation(False):  # traced arrays: the loss itself is checked below
        models, losses = run(models, states)
    return models, losses, ids


def take(models: ToyMLP, i: int) -> ToyMLP:
    """Model i of a stack made by ``train_models``."""
    return jax.tree_util.tree_map(lambda leaf: leaf[i], models)
