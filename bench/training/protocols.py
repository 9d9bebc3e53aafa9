"""The two protocols a method is compared under: ``shared`` and ``native`` (issue 26; README "Protocols").

* ``shared``: one backbone, optimiser and budget for every method — the suite's JiT ViT "tiny" with
  patch 7 and a patch embedding as wide as a patch (bottleneck 64 ≥ 49 pixels), so it can pass its
  input through: the ε-target of Blurring Diffusion and the residual of IHDM contain the input's noise
  and need exactly that (docs/methods.md §5.4, §15.2). Class-conditional, AdamW (β2 0.95), CFG.
* ``native``: each method as its paper trains it, at the shared number of steps and batch size:
  the backbone family, the conditioning, the optimiser and the objective of the paper
  (docs/methods.md §3–§5). What does not scale to 700 steps on two cores is stated beside it.
* ``native-cond``: the native recipe made class-conditional (label dropout and CFG as under ``shared``),
  the one change from the papers, so that class accuracy can be measured for every method.

A protocol is a set of run-config overrides per method, applied over the suite's budget.
"""
from __future__ import annotations

from typing import Any

from hdfm_bench.methods import get_path

PROTOCOLS = ("shared", "native", "native-cond")

#: the shared backbone (the suite's and the head-to-head's)
SHARED_BACKBONE: dict[str, Any] = {"backbone": "vit", "backbone_params": {"size": "tiny", "patch": 7,
                                                                          "bottleneck": 64}}

# The papers' optimiser: Adam with β2 0.999, no weight decay, gradient clipping at 1 (IHDM's configs,
# docs/methods.md §4.2; Blurring Diffusion follows DDPM's). Their learning rates (2e-4 with 5,000 warm-up
# steps) are set for ~1.3 M iterations; at 700 steps the shared rate and warm-up are kept (stated in the
# README), as is the batch.
_PAPER_ADAM = {"beta2": 0.999, "grad_clip": 1.0, "weight_decay": 0.0}
# An ADM U-Net at the suite's scale: 16 channels × (1, 2, 2), one residual block per level, attention
# at 7×7, dropout 0.1 as in IHDM's MNIST config (128 channels × 4 blocks there). 0.30 M parameters
# (the shared ViT: 0.74 M); measured on 2 cores at batch 96: 0.35 s per step (32 channels: ~1 s).
_UNET = {"backbone": "unet", "backbone_params": {"size": "tiny", "channels": 16, "dropout": 0.1}}

#: stands for the path's number of levels K (resolved by :func:`overrides` from the path's parameters)
LEVELS = "levels"

#: each method's native recipe (overrides over the suite's budget and its shared backbone)
NATIVE: dict[str, dict[str, Any]] = {
    # JiT's own recipe is the shared one (ViT, x-prediction, v-loss, AdamW β2 0.95, CFG; §3.5); HDFM
    # builds on JiT's code (§6.8).
    "noise_fm": {},
    "hdfm": {},
    # The paper's ε-prediction and ε-loss with a U-Net, unconditional (§5.2).
    "blurring_diffusion": {**_UNET, **_PAPER_ADAM, "target": "eps", "loss": "eps", "conditional": False},
    # A U-Net conditioned on the integer level k (time_scale = K, docs/methods.md §12, item 3),
    # unconditional (§4.2-§4.3).
    "ihdm": {**_UNET, "backbone_params": {**_UNET["backbone_params"], "time_scale": LEVELS}, **_PAPER_ADAM,
             "conditional": False},
}


def overrides(method: str, protocol: str, path_params: dict | None = None) -> dict[str, Any]:
    """The run-config overrides of the path ``method`` (with ``path_params``) under ``protocol``."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol '{protocol}'; known: {', '.join(PROTOCOLS)}")
    if protocol == "shared":
        return dict(SHARED_BACKBONE)
    if method not in NATIVE:
        raise ValueError(f"method '{method}' has no native recipe; known: {', '.join(NATIVE)}")
    out = {**SHARED_BACKBONE, **NATIVE[method], **({"conditional": True} if protocol == "native-cond" else {})}
    params = out["backbone_params"]
    if params.get("time_scale") == LEVELS:
        out["backbone_params"] = {**params, "time_scale": float(get_path(method, **(path_params or {})).levels)}
    return out


def label(method: str, protocol: str) -> str:
    """The row label of ``method`` under ``protocol`` (``ihdm``, ``ihdm-native``, ``ihdm-native-cond``)."""
    return method if protocol == "shared" else f"{method}-{protocol}"


__all__ = ["PROTOCOLS", "SHARED_BACKBONE", "NATIVE", "overrides", "label"]
