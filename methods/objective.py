"""A training objective: path × prediction target × loss space × norm, validated at construction."""
from __future__ import annotations

import dataclasses

from ._xp import Array
from .paths.base import NORMS, ConfigError, Path


@dataclasses.dataclass(frozen=True)
class Objective:
    """The loss a trainer minimises (docs/methods.md §2.3–2.5; JiT's nine combinations, Tab. 1).

    ``target`` is what the network outputs, ``loss_space`` where the error is measured; any
    of x / eps / v for Gaussian paths. A combination the path cannot support is refused here
    with a one-line reason (e.g. eps or v for ``ihdm``, eps for ``cold_blur``). Defaults are
    each path's published recipe (JiT/HDFM: x-prediction, v-loss; BDM: eps/eps; IHDM:
    prev_mean; cold: x with L1).
    """

    path: Path
    target: str | None = None
    loss_space: str | None = None
    norm: str | None = None

    def __post_init__(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)
        if self.target is None:
            set_("target", self.path.default_target)
        if self.loss_space is None:
            set_("loss_space", self.path.default_loss if self.target == self.path.default_target
                 else self.target)
        if self.norm is None:
            set_("norm", self.path.default_norm)
        self.path.check_combination(self.target, self.loss_space)
        if self.norm not in NORMS:
            raise ConfigError(f"unknown loss norm '{self.norm}'; known: {', '.join(NORMS)}")

    def corrupt(self, x: Array, eps: Array, t: Array) -> Array:
        return self.path.corrupt(x, eps, t)

    def loss(self, raw: Array, x: Array, eps: Array, t: Array, z: Array | None = None) -> Array:
        """Per-sample loss (B,) of the network output ``raw`` for the batch (x, eps, t)."""
        if z is None:
            z = self.path.corrupt(x, eps, t)
        return self.path.loss(raw, self.target, self.loss_space, x, eps, t, z, self.norm)

    def describe(self) -> str:
        return f"{self.path.name}: {self.target}-prediction, {self.loss_space}-loss ({self.norm})"
