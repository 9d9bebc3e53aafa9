"""Toy MLP backbone for (B, D) signals (JiT §3.7, Li & He 2025: the low-dimensional toy experiment).

Input concat(z, t_emb[, class_emb]) -> ``depth`` Linear layers of ``width`` with ReLU between ->
D outputs. The t and class embeddings have dimension ``width``.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from hdfm_bench.backbones.layers import Backbone
from hdfm_bench.backbones.params import BackboneError, as_int, resolve_params
from hdfm_bench.backbones.registry import register_backbone

PRESETS: dict[str, dict[str, Any]] = {"toy": dict(width=256, depth=5)}


class MLP(Backbone):
    """Plain ReLU MLP on concatenated (z, t_emb, class_emb)."""

    def __init__(self, config: dict[str, Any]) -> None:
        width, depth = config["width"], config["depth"]
        super().__init__(config, cond_dim=width)
        (d,) = self.shape
        dims = [d + width * (2 if self.y_embed is not None else 1)] + [width] * (depth - 1) + [d]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            layers += [nn.Linear(a, b)] + ([nn.ReLU()] if i < depth - 1 else [])
        self.net = nn.Sequential(*layers)

    def _forward(self, z: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        t_emb, y_emb = self.embed(t, y)
        parts = [z, t_emb.to(z.dtype)] + ([y_emb.to(z.dtype)] if y_emb is not None else [])
        return self.net(torch.cat(parts, dim=-1))


@register_backbone("mlp", presets=PRESETS)
def build_mlp(shape: tuple[int, ...], num_classes: int = 0, size: str = "toy", **overrides: Any) -> MLP:
    """JiT's toy MLP for signals (D,): ReLU layers on (z, t embedding, class embedding)."""
    p = resolve_params("mlp", PRESETS, size, overrides)
    if len(shape) != 1:
        raise BackboneError(f"mlp: needs a 1-D shape (D,), got {tuple(shape)}")
    p["width"] = as_int("mlp", "width", p["width"], minimum=1)
    p["depth"] = as_int("mlp", "depth", p["depth"], minimum=1)
    config = {"name": "mlp", "shape": tuple(shape), "num_classes": num_classes, "size": size, **p}
    return MLP(config)
