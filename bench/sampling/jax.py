"""Sampling a JAX-backend run: the same sampler code (``methods.samplers``) on jax arrays.

Only the finished samples (and the trajectory states handed to callbacks) cross to torch, for the
metrics and the results store, which are shared with the torch backend.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


class JaxGuided:
    """Classifier-free guidance around a jitted JAX twin (the torch ``sampling.guidance.Guided`` rule).

    out = uncond + w (cond − uncond), w = ``scale`` inside JiT's interval (lower test skipped when
    t_low = 0) else 1; both branches in one doubled batch, so a call counts 2 evaluations.
    """

    def __init__(self, model, y, null: int | None, scale: float = 1.0, interval: Sequence[float] = (0.1, 1.0)):
        import equinox as eqx
        import jax.numpy as jnp

        lo, hi = interval
        self.evals_per_call = 2 if scale != 1.0 else 1
        y = None if y is None else jnp.asarray(np.asarray(y))

        @eqx.filter_jit
        def call(model, z, t):
            if self.evals_per_call == 1:
                return model(z, t, y)
            out = model(jnp.concatenate([z, z]), jnp.concatenate([t, t]),
                         jnp.concatenate([y, jnp.full_like(y, null)]))
            cond, uncond = jnp.split(out, 2)
            inside = (t < hi) & (t > lo) if lo > 0 else t < hi
            w = jnp.where(inside, scale, 1.0).reshape((-1,) + (1,) * (z.ndim - 1))
            return uncond + w * (cond - uncond)

        self._model, self._call = model, call

    def __call__(self, z, t):
        return self._call(self._model, z, t)


def run_sampler(smp, path, target: str, torch_model, labels, null, cfg_scale, cfg_interval,
                eps: torch.Tensor, data: torch.Tensor | None, seed: int, indices: Sequence[int], callback=None):
    """Sample with the JAX twin of ``torch_model``; returns (samples torch, z0 torch, SampleResult).

    Sampler noise is per image, as in the torch path: image i's draw at step k comes from
    fold_in(fold_in(PRNGKey(seed), i), k), so batches of any size give the same images."""
    import jax
    import jax.numpy as jnp

    from hdfm_bench.backbones.jax import twin

    guided = JaxGuided(twin(torch_model), labels, null, cfg_scale, cfg_interval)
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.PRNGKey(seed), i))(jnp.asarray(list(indices)))
    z0 = path.prior(jnp.asarray(eps.numpy()), None if data is None else jnp.asarray(data.numpy()))
    draw = jax.jit(jax.vmap(lambda k, step: jax.random.normal(jax.random.fold_in(k, step), eps.shape[1:]),
                            in_axes=(0, None)))
    noise = lambda step: draw(keys, step)
    to_torch = lambda a: torch.from_numpy(np.array(a))

    def on_step(**state):
        if callback is not None:
            callback(**{k: to_torch(v) if hasattr(v, "shape") else v for k, v in state.items()})

    res = smp.sample(path, guided, z0, target, noise=noise, callback=on_step)
    return to_torch(res.samples), to_torch(z0), res
