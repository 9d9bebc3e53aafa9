"""One registration mechanism: the built-ins and a user's module register the same way; bad or duplicate
names are refused in one line naming the module; every registry is listed with its parameters."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import hdfm_bench
from hdfm_bench.backbones import BACKBONES, build_backbone
from hdfm_bench.core.registry import Registry, RegistryError
from hdfm_bench.evaluation.metrics.extractors import EXTRACTORS
from hdfm_bench.evaluation.metrics.features import METRICS, Features, metrics_from_features
from hdfm_bench.evaluation.metrics.reference import Reference
from hdfm_bench.methods import PATHS, SAMPLERS, ConfigError, get_path, get_sampler
from hdfm_bench.methods.paths.noise_fm import NoiseFM
from hdfm_bench.methods.samplers.ode import Euler
from hdfm_bench.tasks import TASKS, TaskError, get_task
from hdfm_bench.tasks.toy import ToyTask


@pytest.fixture
def cleanup():
    added: list[tuple[Registry, str]] = []
    yield added
    for registry, name in added:
        if name in registry:
            registry.unregister(name)


def _builtin(registry) -> list[str]:
    """The entries the package registers (plugins — a test's file, the installed example package — may have added
    their own in this process; an extractor's origin is its info dict's, builtins)."""
    return [n for n in registry if registry.origin(n).startswith("hdfm_bench.") or registry.origin(n) == "builtins"]


def test_the_builtins_fill_every_registry_in_order():
    assert _builtin(PATHS) == ["noise_fm", "hdfm", "hdfm_code", "blurring_diffusion", "ihdm", "cold_blur"]
    assert _builtin(SAMPLERS) == ["euler", "heun", "posterior", "hdfm_adaptive", "hdfm_exact", "ihdm_delta",
                                  "cold_alg2"]
    assert _builtin(BACKBONES) == ["vit", "unet", "mlp"]
    assert _builtin(TASKS) == ["cifar10", "deadleaves", "digits", "imagefolder", "imagezip", "mnist", "toy"]
    assert _builtin(EXTRACTORS) == ["domain-mnist", "domain-digits", "domain-deadleaves", "inception-offline",
                                    "inception-offline-clean", "inception"]
    assert _builtin(METRICS) == ["fid", "kid", "prc"]
    assert PATHS.origin("hdfm") == "hdfm_bench.methods.paths.hdfm"


def test_a_users_path_and_sampler_register_through_the_public_api(cleanup):
    @hdfm_bench.register_path
    @dataclasses.dataclass(frozen=True)
    class Wider(NoiseFM):
        name = "wider_fm"

    @hdfm_bench.register_sampler
    @dataclasses.dataclass(frozen=True)
    class Euler2(Euler):
        name = "euler2"

    cleanup += [(PATHS, "wider_fm"), (SAMPLERS, "euler2")]
    path = get_path("wider_fm", noise_scale="2")
    assert isinstance(path, Wider) and path.noise_scale == 2.0 and PATHS.origin("wider_fm") == __name__
    x, eps = np.zeros((2, 3)), np.ones((2, 3))
    np.testing.assert_allclose(path.corrupt(x, eps, np.zeros(2)), 2.0 * eps)  # z_0 = s ε
    assert get_sampler("euler2", steps=3).num_steps(path) == 3


def test_duplicates_and_bad_names_are_one_line_naming_the_module(cleanup):
    with pytest.raises(RegistryError, match=r"^cannot register path 'hdfm' from .*: the name is already registered "
                                            r"by hdfm_bench\.methods\.paths\.hdfm$"):
        @hdfm_bench.register_path
        @dataclasses.dataclass(frozen=True)
        class Again(NoiseFM):
            name = "hdfm"
    for bad in ("Upper", "9lives", "", "with space"):
        with pytest.raises(RegistryError, match="a name is lower-case letters"):
            hdfm_bench.register_task(bad, ToyTask)
    with pytest.raises(RegistryError, match="a path is a dataclass subclass of hdfm_bench.methods.paths.base.Path"):
        hdfm_bench.register_path("not_a_path", int)
    with pytest.raises(RegistryError, match="its class says name = 'noise_fm'"):
        hdfm_bench.register_path("other_name", NoiseFM)
    with pytest.raises(RegistryError, match="missing input_size, features, task, tf_name"):
        hdfm_bench.register_extractor("my-extractor", description="d")
    assert "my-extractor" not in EXTRACTORS and "other_name" not in PATHS  # nothing half-registered


def test_unknown_names_are_the_registrys_own_error():
    with pytest.raises(ConfigError, match="^unknown path 'nope'; known: noise_fm, hdfm, "):
        get_path("nope")
    with pytest.raises(TaskError, match="^unknown task 'nope'; known: cifar10, "):
        get_task("nope")
    with pytest.raises(ValueError, match="^unknown backbone 'nope'; known: vit, unet, mlp$"):
        build_backbone("nope", (1, 8, 8))


def test_a_users_backbone_needs_presets_and_builds(cleanup):
    presets = {"small": {"width": 4}}

    @hdfm_bench.register_backbone("tiny_linear", presets=presets)
    def build(shape, num_classes=0, size="small", **overrides):
        """A per-pixel linear map (a test backbone)."""
        return torch.nn.Linear(shape[-1], shape[-1])

    cleanup.append((BACKBONES, "tiny_linear"))
    assert isinstance(build_backbone("tiny_linear", (1, 8, 8)), torch.nn.Linear)
    assert BACKBONES.describe()["tiny_linear"] == {"summary": "A per-pixel linear map (a test backbone).",
                                                   "default_size": "small", "sizes": ["small"],
                                                   "parameters": [{"name": "width", "default": 4}]}
    with pytest.raises(RegistryError, match="needs a 'size' parameter whose default is one of its presets"):
        hdfm_bench.register_backbone("no_size", presets=presets)(lambda shape, num_classes=0: None)


def test_a_users_metric_is_computed_beside_the_builtins(cleanup):
    @hdfm_bench.register_metric("mean_gap", outputs=("mean_gap",), needs_features=False)
    def mean_gap(generated, reference, **_):
        """Distance between the feature means."""
        return {"mean_gap": float(np.linalg.norm(generated.statistics()["mu"] - reference.statistics()["mu"]))}

    cleanup.append((METRICS, "mean_gap"))
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((50, 4)), rng.standard_normal((60, 4)) + 1.0
    gen = Features(keep=True)
    gen.add(torch.as_tensor(a))
    ref = Reference("ref", "ref", 60, features=torch.as_tensor(b))
    out = metrics_from_features(gen, ref, ("fid", "mean_gap"))
    assert out["mean_gap"] == pytest.approx(np.linalg.norm(a.mean(0) - b.mean(0)), rel=1e-12)
    assert set(out) == {"fid", "mean_gap"}
