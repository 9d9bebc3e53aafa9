"""Each method's recipe is read from one place: its path class."""
from __future__ import annotations

import pytest

from hdfm_bench.methods import PATHS, Objective, get_path, get_sampler, list_recipes, recipe
from hdfm_bench.methods.catalog import describe


def test_every_recipe_is_runnable_on_its_own_path():
    for name, r in list_recipes().items():
        path = get_path(name)
        obj = Objective(path)  # the recipe's target and loss are the objective's defaults
        assert (obj.target, obj.loss_space, obj.norm) == (r.target, r.loss, r.norm)
        smp = get_sampler(r.sampler, **({"steps": r.steps} if r.steps is not None else {}))
        smp.check(path, r.target)  # raises if the recipe's sampler cannot run its target
        assert smp.num_steps(path) == (r.steps if r.steps is not None else path.levels)


#: each method's recipe as its paper gives it (target, loss space, norm, sampler, steps; None = one step per
#: level), written here and not read from the code: docs/methods.md §3-§7; the one deviation is Blurring
#: Diffusion's x-prediction / x-loss default (§12.13; the paper trains ε with the ε-loss)
PAPERS = {
    "noise_fm": ("x", "v", "l2", "heun", 20),                     # JiT: x-prediction, v-loss, Heun
    "hdfm": ("x", "v", "l2", "hdfm_exact", 20),                   # HDFM: x-prediction, exact-β sampler (§6.5)
    "hdfm_code": ("x", "v", "l2", "hdfm_adaptive", 20),           # HDFM's released code: adaptive β
    "blurring_diffusion": ("x", "x", "l2", "posterior", 50),      # BDM's posterior sampler (§5; §12.13)
    "ihdm": ("prev_mean", "prev_mean", "l2", "ihdm_delta", None),  # IHDM: previous level's mean, δ-sampler
    "cold_blur": ("x", "x", "l1", "cold_alg2", None),             # cold diffusion: L1, Algorithm 2 per level
}


@pytest.mark.parametrize("name", list(PATHS))
def test_the_published_recipes(name):
    assert name in PAPERS, f"path '{name}' has no paper recipe in this test: add it to PAPERS"
    r = recipe(name)
    assert (r.target, r.loss, r.norm, r.sampler, r.steps) == PAPERS[name]
    assert describe()["paths"][name]["default"] == dict(zip(("target", "loss", "norm", "sampler", "steps"),
                                                            PAPERS[name]))


def test_recipe_text_and_every_path_described():
    assert recipe("blurring_diffusion").objective() == "x-prediction, x-loss"  # not the paper's ε (§12.13)
    assert recipe("cold_blur").objective() == "x-prediction, x-loss, L1"
    assert list(describe()["paths"]) == list(PATHS)


def test_an_unknown_path_has_no_recipe():
    with pytest.raises(ValueError, match="unknown path 'nope'"):
        recipe("nope")
