"""Each method's recipe is read from one place: its path class."""
from __future__ import annotations

import pytest

from hdfm_bench.methods import PATHS, Objective, get_path, get_sampler, list_recipes, recipe
from hdfm_bench.methods.registry import describe


def test_every_recipe_is_runnable_on_its_own_path():
    for name, r in list_recipes().items():
        path = get_path(name)
        obj = Objective(path)  # the recipe's target and loss are the objective's defaults
        assert (obj.target, obj.loss_space, obj.norm) == (r.target, r.loss, r.norm)
        smp = get_sampler(r.sampler, **({"steps": r.steps} if r.steps is not None else {}))
        smp.check(path, r.target)  # raises if the recipe's sampler cannot run its target
        assert smp.num_steps(path) == (r.steps if r.steps is not None else path.levels)


def test_the_published_recipes():
    assert recipe("hdfm").sampler == "hdfm_exact"  # the exact-β sampler (docs/methods.md §6.5)
    assert recipe("hdfm_code").sampler == "hdfm_adaptive"
    assert (recipe("noise_fm").target, recipe("noise_fm").loss, recipe("noise_fm").steps) == ("x", "v", 20)
    assert recipe("blurring_diffusion").objective() == "x-prediction, x-loss"  # not the paper's ε (§12.13)
    assert recipe("cold_blur").objective() == "x-prediction, x-loss, L1"
    assert recipe("ihdm").steps is None  # one step per level


def test_the_registry_description_reports_the_recipes():
    reg = describe()
    assert set(reg["paths"]) == set(PATHS)
    for name, entry in reg["paths"].items():
        r = recipe(name)
        assert entry["default"] == {"target": r.target, "loss": r.loss, "norm": r.norm, "sampler": r.sampler,
                                    "steps": r.steps}


def test_an_unknown_path_has_no_recipe():
    with pytest.raises(ValueError, match="unknown path 'nope'"):
        recipe("nope")
