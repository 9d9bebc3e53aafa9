"""Equinox twin of the torch toy MLP (``bench/backbones/mlp.py``; JiT §3.7).

Same layout: t → sinusoid(1000 t) (256 frequencies, cos | sin) → Linear → SiLU → Linear (width);
concat(z, t_emb) → ``depth`` Linear layers of ``width`` with ReLU between → D outputs.
Unconditional only (the toy task has no classes). :func:`from_torch` copies a torch MLP's
weights, so both backends can be checked against each other on identical parameters.
"""
from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp

FREQ_DIM = 256


def timestep_embedding(t: jax.Array, dim: int = FREQ_DIM, scale: float = 1000.0,
                       max_period: float = 10000.0) -> jax.Array:
    """(B,) → (B, dim): [cos(1000 t ω_k), sin(1000 t ω_k)], ω_k = max_period^(−k/half) (as the torch twin)."""
    half = dim // 2
    freqs = jnp.exp(-math.log(max_period) * jnp.arange(half, dtype=jnp.float32) / half)
    args = scale * t.astype(jnp.float32)[:, None] * freqs[None]
    return jnp.concatenate([jnp.cos(args), jnp.sin(args)], axis=-1)


class Linear(eqx.Module):
    """y = x Wᵀ + b with torch's (out, in) weight layout."""

    weight: jax.Array
    bias: jax.Array

    def __call__(self, x: jax.Array) -> jax.Array:
        return x @ self.weight.T + self.bias


class ToyMLP(eqx.Module):
    """f(z, t) for a batch: z (B, D), t (B,) → (B, D)."""

    t_in: Linear
    t_out: Linear
    layers: list

    def __call__(self, z: jax.Array, t: jax.Array, y: jax.Array | None = None) -> jax.Array:
        if y is not None:
            raise ValueError("the JAX toy MLP is unconditional; got class labels")
        emb = self.t_out(jax.nn.silu(self.t_in(timestep_embedding(t))))
        h = jnp.concatenate([z, emb.astype(z.dtype)], axis=-1)
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < len(self.layers) - 1:
                h = jax.nn.relu(h)
        return h


def _linear(key: jax.Array, n_in: int, n_out: int, std: float | None = None) -> Linear:
    """torch.nn.Linear's default init (U(±1/√n_in) for weight and bias), or N(0, std²) with zero bias."""
    kw, kb = jax.random.split(key)
    if std is not None:
        return Linear(std * jax.random.normal(kw, (n_out, n_in)), jnp.zeros((n_out,)))
    bound = 1.0 / math.sqrt(n_in)
    return Linear(jax.random.uniform(kw, (n_out, n_in), minval=-bound, maxval=bound),
                  jax.random.uniform(kb, (n_out,), minval=-bound, maxval=bound))


def init_mlp(key: jax.Array, dim: int, width: int = 256, depth: int = 5) -> ToyMLP:
    """A freshly initialised MLP with the torch twin's initialisation scheme (not its random draws)."""
    keys = jax.random.split(key, depth + 2)
    dims = [dim + width] + [width] * (depth - 1) + [dim]
    return ToyMLP(t_in=_linear(keys[0], FREQ_DIM, width, std=0.02), t_out=_linear(keys[1], width, width, std=0.02),
                  layers=[_linear(k, a, b) for k, a, b in zip(keys[2:], dims[:-1], dims[1:])])


def from_torch(model) -> ToyMLP:
    """Copy the weights of a torch ``hdfm_bench.backbones.mlp.MLP`` (unconditional) into a ToyMLP."""
    if model.y_embed is not None:
        raise ValueError("the JAX toy MLP is unconditional; got a class-conditional torch MLP")
    if model.t_embed.scale != 1000.0:
        raise ValueError(f"the JAX toy MLP embeds 1000 t; got a torch MLP with time_scale {model.t_embed.scale:g}")

    def lin(m) -> Linear:
        return Linear(jnp.asarray(m.weight.detach().cpu().numpy()), jnp.asarray(m.bias.detach().cpu().numpy()))

    linears = [m for m in model.net if hasattr(m, "weight")]
    return ToyMLP(t_in=lin(model.t_embed.mlp[0]), t_out=lin(model.t_embed.mlp[2]), layers=[lin(m) for m in linears])


def to_state_dict(model: ToyMLP) -> dict:
    """Parameters as torch tensors under the torch MLP's names (inverse of :func:`from_torch`)."""
    import numpy as np
    import torch

    out = {}
    named = [("t_embed.mlp.0", model.t_in), ("t_embed.mlp.2", model.t_out)]
    named += [(f"net.{2 * i}", lin) for i, lin in enumerate(model.layers)]  # ReLUs sit between Linears
    for name, lin in named:
        out[f"{name}.weight"] = torch.from_numpy(np.array(lin.weight))
        out[f"{name}.bias"] = torch.from_numpy(np.array(lin.bias))
    return out
