"""Shared torch backbones, each registered by ``@register_backbone``: ``vit`` (JiT-style), ``unet``
(ADM-style, as in IHDM), ``mlp`` (JiT toy).

    model = build_backbone(name, shape=(C, H, W) or (D,), num_classes=K, size=..., **params)
    out = model(z, t, y=None)   # same shape as z; t (B,) in [0, 1]; y (B,) long in [0, K] or None
    model.last_aux_loss         # LayerSync term (x lambda) from the last training forward, else None
    build_backbone(**model.config)  # rebuilds the same architecture

``num_classes=K > 0``: class-conditional with K + 1 label rows, row K the NULL class (``y=None``
means all-null). ``num_classes=0``: no class input (passing ``y`` is an error).
"""
from __future__ import annotations

# the built-ins, imported for their registration, in the order ``hdfm-bench list`` shows them
# isort: off
from hdfm_bench.backbones import vit, unet, mlp  # noqa: F401
# isort: on
from hdfm_bench.backbones.params import BackboneError
from hdfm_bench.backbones.registry import BACKBONES, build_backbone, list_backbones, register_backbone

__all__ = ["BACKBONES", "BackboneError", "build_backbone", "list_backbones", "register_backbone"]
