"""The methods' registries as plain data: the paths, targets and samplers sections of ``hdfm-bench list``."""
from __future__ import annotations

from typing import Any

from .paths import PATHS, TARGETS, get_path, list_paths
from .recipes import recipe
from .samplers import SAMPLERS

CONVENTION = "t in [0, 1]: t = 0 source (noise / most corrupted), t = 1 data; data in [-1, 1]"


def describe() -> dict[str, Any]:
    """Every path (summary, parameters with defaults, targets, loss spaces, recipe, levels), the
    targets, and every sampler (summary, parameters, the paths it runs on)."""
    paths = {}
    for name, cls in PATHS.items():
        r = recipe(name)
        paths[name] = {
            "summary": cls.summary,
            "parameters": cls.parameters(),
            "targets": list(cls.targets),
            "loss_spaces": list(cls.loss_spaces),
            "default": {"target": r.target, "loss": r.loss, "norm": r.norm, "sampler": r.sampler, "steps": r.steps},
            "levels": get_path(name).levels,
        }
    samplers = {}
    for name, cls in SAMPLERS.items():
        samplers[name] = {"summary": cls.summary, "stochastic": cls.stochastic, "needs": cls.needs,
                          "parameters": [{"name": p["name"], "default": p["default"]} for p in cls.parameters()],
                          "paths": [p for p in list_paths() if cls().path_refusal(get_path(p)) is None]}
    return {"convention": CONVENTION, "paths": paths, "targets": dict(TARGETS), "samplers": samplers}


__all__ = ["CONVENTION", "describe"]
