"""Sampling a run: guidance arithmetic and its interval, counted NFE, files, reproducibility, every default sampler."""
from __future__ import annotations

import json

import pytest
import torch

from hdfm_bench.methods import get_sampler
from hdfm_bench.sampling.generate import generate
from hdfm_bench.sampling.guidance import Guided
from hdfm_bench.sampling.output import write_samples
from hdfm_bench.training import train
from tests.training.helpers import cfg_for


def test_cfg_arithmetic_interval_and_nfe():
    class Fake(torch.nn.Module):  # output = class id (null = 10) broadcast
        def forward(self, z, t, y):
            return y.float().reshape(-1, 1, 1, 1).expand_as(z).clone()

    y = torch.tensor([3, 7])
    g = Guided(Fake(), y, null=10, scale=2.5, interval=(0.1, 1.0))
    z = torch.zeros(2, 1, 2, 2)
    inside = g(z, torch.tensor([0.5, 0.5]))
    torch.testing.assert_close(inside[:, 0, 0, 0], 10 + 2.5 * (y.float() - 10))
    outside = g(z, torch.tensor([0.05, 0.05]))  # t <= 0.1: no guidance, the conditional output
    torch.testing.assert_close(outside[:, 0, 0, 0], y.float())
    assert g.evals_per_call == 2
    from hdfm_bench.methods import get_path

    res = get_sampler("heun", steps=5).sample(get_path("noise_fm"), g, torch.zeros(2, 1, 2, 2), "x")
    assert res.calls == 9 and res.nfe == 18
    assert Guided(Fake(), y, null=10, scale=1.0).evals_per_call == 1
    with pytest.raises(ValueError, match="class-conditional"):
        Guided(Fake(), None, None, scale=2.0)


def test_sample_writes_grid_and_protocol(tmp_path):
    """Also: output stems may contain dots (cfg1.5)."""
    cfg = cfg_for(tmp_path, "hdfm", steps=3)
    res = train(cfg, progress=False)
    out = generate(res.run_dir, sampler="heun", steps=3, cfg_scale=2.0, ema=0.99, n=20, seed=1)
    assert out["samples"].shape == (20, 1, 8, 8) and out["samples"].abs().max() <= 1
    assert out["protocol"]["nfe"] == 2 * 5 and out["protocol"]["checkpoint_step"] == 3
    files = write_samples(out, tmp_path / "s" / "grid-cfg1.5")
    assert files["grid"].name == "grid-cfg1.5.png" and files["samples"].name == "grid-cfg1.5.pt"
    assert files["grid"].read_bytes()[:4] == b"\x89PNG"
    assert json.loads(files["protocol"].read_text())["cfg_scale"] == 2.0
    # The same seed gives the same samples.
    again = generate(res.run_dir, sampler="heun", steps=3, cfg_scale=2.0, ema=0.99, n=20, seed=1)
    torch.testing.assert_close(again["samples"], out["samples"])


@pytest.mark.parametrize("path", ["ihdm", "cold_blur", "blurring_diffusion", "hdfm_code"])
def test_default_samplers_run_from_checkpoints(tmp_path, path):
    res = train(cfg_for(tmp_path, path, steps=2), progress=False)
    out = generate(res.run_dir, n=4)
    assert out["samples"].shape == (4, 1, 8, 8) and torch.isfinite(out["samples"]).all()
