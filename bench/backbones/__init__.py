"""Shared torch backbones: ``vit`` (JiT-style), ``unet`` (ADM-style, as in IHDM), ``mlp`` (JiT toy).

    model = build_backbone(name, shape=(C, H, W) or (D,), num_classes=K, size=..., **params)
    out = model(z, t, y=None)   # same shape as z; t (B,) in [0, 1]; y (B,) long in [0, K] or None
    model.last_aux_loss         # LayerSync term (x lambda) from the last training forward, else None
    build_backbone(**model.config)  # rebuilds the same architecture

``num_classes=K > 0``: class-conditional with K + 1 label rows, row K the NULL class (``y=None``
means all-null). ``num_classes=0``: no class input (passing ``y`` is an error).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from hdfm_bench.backbones.common import BackboneError, as_int
from hdfm_bench.backbones.mlp import build_mlp
from hdfm_bench.backbones.unet import build_unet
from hdfm_bench.backbones.vit import build_vit

__all__ = ["BACKBONES", "BackboneError", "build_backbone", "list_backbones"]

BACKBONES: dict[str, Callable[..., nn.Module]] = {"vit": build_vit, "unet": build_unet, "mlp": build_mlp}


def list_backbones() -> list[str]:
    """Names of the registered backbones."""
    return list(BACKBONES)


def build_backbone(name: str, shape: tuple[int, ...], num_classes: int = 0, **params: Any) -> nn.Module:
    """Build backbone ``name`` for inputs of ``shape`` (without the batch dim); ``size=`` picks a preset."""
    if name not in BACKBONES:
        raise BackboneError(f"unknown backbone {name!r}; known: {', '.join(BACKBONES)}")
    try:
        shape = tuple(as_int(name, "shape", s, minimum=1) for s in shape)
    except TypeError:
        raise BackboneError(f"{name}: shape must be a tuple of positive integers, got {shape!r}") from None
    num_classes = as_int(name, "num_classes", num_classes)
    return BACKBONES[name](shape, num_classes, **params)
