"""The stability probe (issue 17.3): a perturbation of exactly δ·ξ on z0, dynamic thresholding, the probe's table."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hdfm_bench.evaluation.protocol import EvalSettings
from hdfm_bench.experiments.stability import Probe, measure, table
from hdfm_bench.methods import get_sampler
from hdfm_bench.methods.paths.base import ConfigError
from hdfm_bench.methods.samplers.posterior import dynamic_threshold
from hdfm_bench.sampling.generate import PERTURB_SEED, Generator
from hdfm_bench.sampling.seeds import ImageGenerators
from hdfm_bench.sampling.settings import SamplingSettings
from hdfm_bench.training import train
from tests.training.helpers import cfg_for


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return train(cfg_for(tmp_path_factory.mktemp("stab"), "noise_fm", target="x", loss="v", steps=20),
                 progress=False).run_dir


def test_perturbation_moves_z0_by_exactly_delta_xi(run):
    gen = Generator(run, SamplingSettings(n=8, steps=3, ema=0.9))
    plain = gen.batch(list(range(8)))
    gen.perturb = 1e-3
    moved = gen.batch(list(range(8)))
    xi = ImageGenerators(PERTURB_SEED, list(range(8))).randn((1, 8, 8))
    torch.testing.assert_close(moved.z0 - plain.z0, 1e-3 * xi, rtol=1e-4, atol=1e-7)
    gen.perturb = 0.0
    assert torch.equal(gen.batch(list(range(8))).samples, plain.samples)


def test_probe_of_an_x_prediction_ode_is_stable(run):
    s = EvalSettings(n=24, steps=4, ema=0.9, metrics=("fid",))
    r = measure(Probe("noise FM", run, s), perturb=0.0, noise_seeds=(2, 3), call_deltas=(0.0,))
    assert all(t["pixels_differing"] == 0 and t["fid_change"] == 0 for t in r["twins"])  # same input, same images
    assert r["stable"] and len(r["fid_seeds"]) == 3
    r = measure(Probe("noise FM", run, s), noise_seeds=(2, 3), call_deltas=(1e-6, 1e-1))
    small, large = r["twins"][1], r["twins"][2]
    assert r["twins"][0]["where"] == "z0" and small["where"] == "calls"
    assert small["pixels_differing"] < 0.01 and small["mean_abs_diff"] < 0.05 and r["stable"]
    assert large["mean_abs_diff"] > 10 * small["mean_abs_diff"]  # a large perturbation does show
    text = table([r])
    assert "noise FM" in text and "every call + 0.1·ξ" in text and "| yes" in text


def test_dynamic_threshold_matches_its_definition():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (3, 1, 8, 8))
    x[0] *= 0.3  # inside [-1, 1]: unchanged (s = 1)
    out = dynamic_threshold(torch.as_tensor(x), 0.9).numpy()
    for i in range(3):
        flat = np.sort(np.abs(x[i]).ravel())
        s = max(1.0, flat[int(0.9 * flat.size)])
        np.testing.assert_allclose(out[i], np.clip(x[i], -s, s) / s)
    np.testing.assert_array_equal(out[0], x[0])
    assert np.abs(out).max() <= 1.0
    with pytest.raises(ConfigError, match="threshold must be a quantile in \\[0, 1\\)"):
        get_sampler("posterior", threshold=1.5)
