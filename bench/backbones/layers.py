"""Layers shared by every backbone: the Backbone base class (input checks), time/class embeddings, RMSNorm.

Conventions (see ``hdfm_bench.backbones``): inputs are ``z`` (B, *shape), the continuous time
``t`` (B,) in [0, 1] and an optional class label ``y`` (B,) in [0, K] where row K of the class
table is the NULL class (label dropout / classifier-free guidance, Ho & Salimans 2022).
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hdfm_bench.backbones.params import BackboneError


def timestep_embedding(t: torch.Tensor, dim: int, scale: float = 1000.0, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of ``scale * t`` (Vaswani et al. 2017, as in DDPM/ADM/DiT): (B,) -> (B, dim).

    ``t`` in [0, 1] is scaled by 1000 so the frequencies match the integer-timestep embeddings
    the architectures were designed with.
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = scale * t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class TimestepEmbedder(nn.Module):
    """t -> sinusoid(scale · t) -> Linear -> SiLU -> Linear (DiT, Peebles & Xie 2023; ADM uses the same).

    ``scale`` 1000 gives DDPM's integer-timestep frequencies. For a path with K levels, ``scale = K``
    is IHDM's integer-level conditioning: the level is k = K(1 − t), and sinusoid(k) is a fixed
    rotation of each (cos, sin) pair of sinusoid(K t), which the first linear layer absorbs exactly
    (docs/methods.md §12, item 3)."""

    def __init__(self, dim: int, freq_dim: int = 256, scale: float = 1000.0) -> None:
        super().__init__()
        self.freq_dim, self.scale = freq_dim, scale
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        for layer in (self.mlp[0], self.mlp[2]):
            nn.init.normal_(layer.weight, std=0.02)
            nn.init.zeros_(layer.bias)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        emb = timestep_embedding(t, self.freq_dim, self.scale)
        return self.mlp(emb.to(self.mlp[0].weight.dtype))


class ClassEmbedder(nn.Module):
    """Label table with K + 1 rows; row K is the NULL class (DiT's label embedding with CFG row)."""

    def __init__(self, num_classes: int, dim: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.table = nn.Embedding(num_classes + 1, dim)
        nn.init.normal_(self.table.weight, std=0.02)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.table(y)


class RMSNorm(nn.Module):
    """Root-mean-square norm with a learned gain (Zhang & Sennrich 2019); no mean subtraction, no bias."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Fused kernel (torch >= 2.4): fewer elementwise passes than the explicit formula.
        return F.rms_norm(x, (x.shape[-1],), self.weight.to(x.dtype), self.eps)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN modulation x * (1 + scale) + shift, broadcast over tokens (DiT)."""
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class Backbone(nn.Module):
    """Base class: input checks, t/y embeddings, ``config`` and ``last_aux_loss``.

    Subclasses set up their layers and implement ``_forward(z, t, y)`` with validated inputs
    (``y`` a long tensor, the null class substituted for ``None`` when conditional).
    """

    def __init__(self, config: dict[str, Any], cond_dim: int, freq_dim: int = 256) -> None:
        super().__init__()
        self.config = config
        self.shape = tuple(config["shape"])
        self.num_classes = int(config["num_classes"])
        self.last_aux_loss: torch.Tensor | None = None
        self.t_embed = TimestepEmbedder(cond_dim, freq_dim, float(config.get("time_scale", 1000.0)))
        self.y_embed = ClassEmbedder(self.num_classes, cond_dim) if self.num_classes > 0 else None

    def _check(self, z: torch.Tensor, t: torch.Tensor | float, y: torch.Tensor | None):
        name = self.config["name"]
        if z.dim() != len(self.shape) + 1 or tuple(z.shape[1:]) != self.shape:
            raise BackboneError(f"{name}: input of shape {tuple(z.shape)} does not match (B, "
                                f"{', '.join(map(str, self.shape))})")
        batch = z.shape[0]
        t = torch.as_tensor(t, device=z.device, dtype=torch.float32)
        if t.dim() == 0:
            t = t.expand(batch)
        if t.shape != (batch,):
            raise BackboneError(f"{name}: t must have shape ({batch},), got {tuple(t.shape)}")
        if self.num_classes == 0:
            if y is not None:
                raise BackboneError(f"{name}: y given to an unconditional backbone (num_classes=0)")
            return t, None
        if y is None:  # unconditional request = every sample gets the NULL class
            return t, torch.full((batch,), self.num_classes, device=z.device, dtype=torch.long)
        y = torch.as_tensor(y, device=z.device)
        if y.shape != (batch,) or y.is_floating_point():
            raise BackboneError(f"{name}: y must be an integer tensor of shape ({batch},), got {y.dtype} "
                                f"{tuple(y.shape)}")
        # (a data-dependent check: left out of a compiled graph, where it would force a device sync)
        if not torch.compiler.is_compiling() and bool(((y < 0) | (y > self.num_classes)).any()):
            raise BackboneError(f"{name}: y out of range [0, {self.num_classes}] "
                                f"(min {int(y.min())}, max {int(y.max())}; {self.num_classes} is the null class)")
        return t, y.long()

    def embed(self, t: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(t embedding, class embedding or None)."""
        return self.t_embed(t), (self.y_embed(y) if self.y_embed is not None else None)

    def forward(self, z: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        t, y = self._check(z, t, y)
        self.last_aux_loss = None
        return self._forward(z, t, y)

    def _forward(self, z: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError
