"""The JAX backend: equinox backbones, an optax training loop under jit, vmap over models.

The corruption paths, objectives and samplers are the same ``methods`` code as the torch
backend (Array API); only the network and the optimizer loop are JAX-specific.
"""
from .mlp import ToyMLP, from_torch, init_mlp

__all__ = ["ToyMLP", "from_torch", "init_mlp"]
