"""The vmapped JAX toy trainer against the torch loss and optimizer; the toy reproduction end to end."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

from hdfm_bench.backbones import build_backbone
from hdfm_bench.backbones.jax import from_torch
from hdfm_bench.methods import Objective, get_path
from hdfm_bench.training.jax_vmapped import loss_fn, make_optimizer, take, train_models

COMBOS = [(p, t) for p in ("noise_fm", "hdfm", "hdfm_code", "blurring_diffusion") for t in ("x", "eps", "v")]


def _batch(path, dim=16, n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, dim, generator=g) * 2 - 1
    eps = torch.randn(n, dim, generator=g)
    t = path.sample_t(torch.rand(n, generator=g))
    return x, eps, t


def _j(*ts):
    return [jnp.asarray(t.numpy()) for t in ts]


@pytest.mark.parametrize("pname,target", COMBOS)
def test_same_weights_same_loss_in_torch_and_equinox(pname, target):
    path = get_path(pname)
    objective = Objective(path, target, "v")
    torch.manual_seed(1)
    model = build_backbone("mlp", shape=(16,), num_classes=0)
    x, eps, t = _batch(path)
    z = path.corrupt(x, eps, t)
    with torch.no_grad():
        want = float(objective.loss(model(z, t), x, eps, t, z).mean())
    got = float(loss_fn(from_torch(model), objective, *_j(x, eps, t)))
    assert abs(got - want) <= 1e-5 * max(1.0, abs(want))


@pytest.mark.parametrize("pname,target", [("noise_fm", "x"), ("hdfm", "v"), ("hdfm", "eps")])
def test_one_adamw_step_moves_both_backends_to_the_same_weights(pname, target):
    path = get_path(pname)
    objective = Objective(path, target, "v")
    torch.manual_seed(2)
    model = build_backbone("mlp", shape=(16,), num_classes=0)
    eqx_model = from_torch(model)
    x, eps, t = _batch(path, seed=3)
    # Adam's first step is ±lr·g/(|g| + 1e-8): for the few weights whose gradient is ~1e-8, float
    # rounding differences between the backends move that ratio by up to ~7 % of lr (so a small lr).
    lr = 1e-4
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.0)
    z = path.corrupt(x, eps, t)
    objective.loss(model(z, t), x, eps, t, z).mean().backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1e3)  # the trainer's clip (inactive here)
    opt.step()
    jopt = make_optimizer(lr, warmup=0, grad_clip=1e3)
    state = jopt.init(eqx_model)
    grads = jax.grad(loss_fn)(eqx_model, objective, *_j(x, eps, t))
    updates, _ = jopt.update(grads, state, eqx_model)
    stepped = optax.apply_updates(eqx_model, updates)
    after = from_torch(model)
    for a, b in zip(jax.tree_util.tree_leaves(stepped), jax.tree_util.tree_leaves(after)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5, rtol=0)
    moved = max(float(jnp.abs(a - b).max()) for a, b in zip(jax.tree_util.tree_leaves(stepped),
                                                           jax.tree_util.tree_leaves(eqx_model)))
    assert moved > 5e-5  # the step did move the weights (by ~lr)


@pytest.mark.parametrize("pname", ["noise_fm", "hdfm"])
def test_jitted_training_lowers_the_loss_and_vmapped_equals_single(pname):
    path = get_path(pname)
    data = jnp.asarray(np.random.default_rng(0).uniform(-0.5, 0.5, (512, 8)).astype(np.float32))
    kw = dict(steps=60, batch_size=32, lr=2e-3, warmup=5, width=64, depth=3)
    models, losses, ids = train_models(path, ["x", "v"], [0, 1], data, **kw)
    losses = np.asarray(losses)
    assert losses.shape == (4, 60) and np.isfinite(losses).all()
    assert (losses[:, -10:].mean(1) < losses[:, :5].mean(1)).all()
    # the same model trained alone (no vmap partner) ends with the same weights and losses
    single, single_losses, _ = train_models(path, ["v"], [1], data, **kw)
    np.testing.assert_allclose(np.asarray(single_losses)[0], losses[ids.index(("v", 1))], rtol=2e-4, atol=1e-6)
    for a, b in zip(jax.tree_util.tree_leaves(take(single, 0)),
                    jax.tree_util.tree_leaves(take(models, ids.index(("v", 1))))):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-3, atol=1e-5)
