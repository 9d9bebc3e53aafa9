"""Equinox twin of the JiT ViT (``bench/backbones/vit.py``): the same network, the same parameter names.

The module holds the torch model's ``state_dict`` as a flat dict of jax arrays (names such as
``blocks.0.attn.qkv.weight``), so a torch checkpoint loads here and a JAX checkpoint loads into
torch unchanged, and a fresh JAX model is initialised exactly as the torch trainer initialises
its model for the same seed (:func:`init_vit` builds the torch model once and copies it).
Architecture (JiT, Li & He 2025; DiT adaLN-Zero): bottleneck patch embedding p²C → r → width,
``depth`` pre-RMSNorm blocks with qk-norm, 2-D RoPE and SwiGLU, in-context class tokens, final
adaLN layer, unpatchify. Not supported here (refused by :func:`check_config`): dropout and
LayerSync, which need per-step randomness / auxiliary losses the JAX trainer does not carry.
"""
from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp

from hdfm_bench.backbones.jax.mlp import timestep_embedding


class JaxBackboneError(ValueError):
    """A backbone configuration the JAX backend cannot run (one-line message)."""


def check_config(config: dict) -> None:
    if config["name"] != "vit":
        raise JaxBackboneError(f"backend jax: backbone {config['name']!r} has no JAX twin; use vit or mlp")
    if config.get("dropout", 0.0):
        raise JaxBackboneError("backend jax: vit dropout > 0 is not supported (set backbone_params.dropout=0)")
    if config.get("layersync") is not None:
        raise JaxBackboneError("backend jax: vit layersync is not supported")


def _linear(p: dict, name: str, x: jax.Array) -> jax.Array:
    y = x @ p[f"{name}.weight"].T
    return y + p[f"{name}.bias"] if f"{name}.bias" in p else y


def _rms(p: dict, name: str, x: jax.Array, eps: float = 1e-6) -> jax.Array:
    return x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + eps) * p[f"{name}.weight"]


def _modulate(x: jax.Array, shift: jax.Array, scale: jax.Array) -> jax.Array:
    return x * (1 + scale[:, None]) + shift[:, None]


def rope_tables(grid: tuple[int, int], head_dim: int, prefix: int, base: float = 10000.0):
    """cos/sin (N, head_dim) of the torch twin's 2-D RoPE; identity rows for ``prefix`` in-context tokens."""
    rows, cols = jnp.meshgrid(jnp.arange(grid[0]), jnp.arange(grid[1]), indexing="ij")
    quarter = head_dim // 4
    freqs = base ** (-jnp.arange(quarter, dtype=jnp.float32) / quarter)
    ang_r, ang_c = rows.reshape(-1, 1) * freqs, cols.reshape(-1, 1) * freqs
    ang = jnp.concatenate([ang_r, ang_r, ang_c, ang_c], axis=-1)
    ang = jnp.concatenate([jnp.zeros((prefix, head_dim)), ang])
    return jnp.cos(ang), jnp.sin(ang)


def _rotate_half(x: jax.Array) -> jax.Array:
    a, b = jnp.split(x, 2, axis=-1)
    return jnp.concatenate([-b, a], axis=-1)


def _rope(x: jax.Array, cos: jax.Array, sin: jax.Array) -> jax.Array:
    d = x.shape[-1] // 2
    halves = [x[..., :d] * cos[:, :d] + _rotate_half(x[..., :d]) * sin[:, :d],
              x[..., d:] * cos[:, d:] + _rotate_half(x[..., d:]) * sin[:, d:]]
    return jnp.concatenate(halves, axis=-1)


class ViT(eqx.Module):
    """f(z, t, y): z (B, C, H, W), t (B,), y (B,) int in [0, K] (K = null class) or None → (B, C, H, W)."""

    params: dict
    config: tuple = eqx.field(static=True)  # the torch model's config as sorted (key, value) pairs

    @property
    def cfg(self) -> dict:
        return dict(self.config)

    def __call__(self, z: jax.Array, t: jax.Array, y: jax.Array | None = None) -> jax.Array:
        p, c = self.params, self.cfg
        ch, h, w = c["shape"]
        patch, width, heads = c["patch"], c["width"], c["heads"]
        gh, gw = h // patch, w // patch
        b = z.shape[0]
        temb = _linear(p, "t_embed.mlp.2", jax.nn.silu(_linear(p, "t_embed.mlp.0", timestep_embedding(
            t, scale=c.get("time_scale", 1000.0)))))
        yemb = None
        if c["num_classes"]:
            y = jnp.full((b,), c["num_classes"]) if y is None else y
            yemb = p["y_embed.table.weight"][y]
        cond = temb if yemb is None else temb + yemb
        x = z.reshape(b, ch, gh, patch, gw, patch).transpose(0, 2, 4, 3, 5, 1).reshape(b, gh * gw, -1)
        x = _linear(p, "embed_in.1", _linear(p, "embed_in.0", x))
        prefix = 0
        for i in range(c["depth"]):
            if c["in_context_tokens"] and i == c["in_context_start"]:
                ctx = jnp.broadcast_to(p["ctx_pos"], (b,) + p["ctx_pos"].shape)
                ctx = ctx if yemb is None else ctx + yemb[:, None]
                x, prefix = jnp.concatenate([ctx, x], axis=1), c["in_context_tokens"]
            x = self._block(p, f"blocks.{i}", x, cond, rope_tables((gh, gw), width // heads, prefix), heads)
        shift, scale = jnp.split(_linear(p, "final.ada.1", jax.nn.silu(cond)), 2, axis=-1)
        out = _linear(p, "final.linear", _modulate(_rms(p, "final.norm", x[:, prefix:]), shift, scale))
        return out.reshape(b, gh, gw, patch, patch, ch).transpose(0, 5, 1, 3, 2, 4).reshape(b, ch, h, w)

    @staticmethod
    def _block(p: dict, name: str, x: jax.Array, cond: jax.Array, rope, heads: int) -> jax.Array:
        sh1, sc1, g1, sh2, sc2, g2 = jnp.split(_linear(p, f"{name}.ada.1", jax.nn.silu(cond)), 6, axis=-1)
        b, n, w = x.shape
        hd = w // heads
        qkv = _linear(p, f"{name}.attn.qkv", _modulate(_rms(p, f"{name}.norm1", x), sh1, sc1))
        q, k, v = qkv.reshape(b, n, 3, heads, hd).transpose(2, 0, 3, 1, 4)
        q = _rope(_rms(p, f"{name}.attn.q_norm", q), *rope)
        k = _rope(_rms(p, f"{name}.attn.k_norm", k), *rope)
        att = jax.nn.softmax(q @ k.swapaxes(-1, -2) / math.sqrt(hd), axis=-1)
        a = _linear(p, f"{name}.attn.proj", (att @ v).transpose(0, 2, 1, 3).reshape(b, n, w))
        x = x + g1[:, None] * a
        u, g = jnp.split(_linear(p, f"{name}.mlp.w12", _modulate(_rms(p, f"{name}.norm2", x), sh2, sc2)), 2, axis=-1)
        return x + g2[:, None] * _linear(p, f"{name}.mlp.w3", jax.nn.silu(u) * g)


def _static(value):
    return tuple(_static(v) for v in value) if isinstance(value, (list, tuple)) else value


def from_torch(model) -> ViT:
    """The JAX twin of a torch ``hdfm_bench.backbones.vit.ViT`` (its weights copied)."""
    check_config(model.config)
    params = {k: jnp.asarray(v.detach().cpu().float().numpy()) for k, v in model.state_dict().items()}
    return ViT(params, tuple(sorted((k, _static(v)) for k, v in model.config.items())))


def to_state_dict(model: ViT) -> dict:
    """Parameters as torch tensors under the torch model's names (loadable by the torch ViT)."""
    import numpy as np
    import torch

    return {k: torch.from_numpy(np.array(v)) for k, v in model.params.items()}
