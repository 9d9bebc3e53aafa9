"""Each method's recipe — target, loss space, norm, sampler and its budget — read from one place.

The recipe of a path is what its class declares (``default_target``, ``default_loss``,
``default_norm``, ``default_sampler``, ``default_steps``; see docs/methods.md §3–§7 for where each
comes from). The default suite, the ablation's labels, the perf harness, ``sampler = "default"``
in sweeps and the README's recipe table all read it through :func:`recipe`.
"""
from __future__ import annotations

import dataclasses

from .paths import PATHS, get_path


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A method's published training objective and sampler."""

    path: str
    target: str
    loss: str
    norm: str
    sampler: str
    steps: int | None  # the sampler's budget; None = the sampler's own (the path's levels)

    def objective(self) -> str:
        """``x-prediction, v-loss`` style text (with the norm when it is not l2)."""
        norm = "" if self.norm == "l2" else f", {self.norm.upper()}"
        return f"{self.target}-prediction, {self.loss}-loss{norm}"


def recipe(path: str, **path_params) -> Recipe:
    """The recipe of the registered path ``path`` (parameters only validate the name)."""
    p = get_path(path, **path_params)
    cls = type(p)
    return Recipe(path=path, target=cls.default_target, loss=cls.default_loss, norm=cls.default_norm,
                  sampler=cls.default_sampler, steps=cls.default_steps)


def list_recipes() -> dict[str, Recipe]:
    """Every registered path's recipe, in registry order."""
    return {name: recipe(name) for name in PATHS}


__all__ = ["Recipe", "recipe", "list_recipes"]
