"""The shared and native protocols (training.protocols) and the integer-level time embedding."""
from __future__ import annotations

import math

import pytest
import torch

from hdfm_bench.backbones import build_backbone
from hdfm_bench.backbones.layers import timestep_embedding
from hdfm_bench.backbones.params import BackboneError
from hdfm_bench.experiments import suite
from hdfm_bench.training import protocols


def test_time_scale_k_is_ihdms_integer_level_up_to_a_fixed_rotation():
    """sinusoid(k), k = K(1 − t), is a fixed rotation of each (cos, sin) pair of sinusoid(K t)
    (docs/methods.md §12.3): cos(ω(K − Kt)) = cos ωK cos ωKt + sin ωK sin ωKt, and the same for sin."""
    K, dim = 100, 16
    t = torch.tensor([1 - k / K for k in range(1, K)], dtype=torch.float64)
    scaled = timestep_embedding(t, dim, scale=K).double()
    level = timestep_embedding(K * (1 - t), dim, scale=1.0).double()
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float64) / half)
    c, s = torch.cos(freqs * K), torch.sin(freqs * K)
    cos_t, sin_t = scaled[:, :half], scaled[:, half:]
    torch.testing.assert_close(level[:, :half], c * cos_t + s * sin_t, atol=2e-5, rtol=0)
    torch.testing.assert_close(level[:, half:], s * cos_t - c * sin_t, atol=2e-5, rtol=0)
    # neighbouring levels are 1 unit apart with s = K, 1000/K with the default
    assert timestep_embedding(t[:2], dim, scale=K)[0, 0] != timestep_embedding(t[:2], dim)[0, 0]


def test_every_backbone_takes_a_positive_time_scale():
    for name, shape in (("vit", (1, 8, 8)), ("unet", (1, 8, 8)), ("mlp", (4,))):
        m = build_backbone(name, shape=shape, time_scale=7.0)
        assert m.t_embed.scale == 7.0 and m.config["time_scale"] == 7.0
        assert build_backbone(name, shape=shape).t_embed.scale == 1000.0
        with pytest.raises(BackboneError, match="time_scale"):
            build_backbone(name, shape=shape, time_scale=0)


def test_native_and_shared_configs():
    shared = suite.configs(protocol="shared")
    native = suite.configs(protocol="native")
    for cfg in shared.values():
        assert cfg.backbone == "vit" and cfg.backbone_params["bottleneck"] >= cfg.backbone_params["patch"] ** 2
        assert cfg.conditional
    assert native["noise_fm"].run_id() == shared["noise_fm"].run_id()  # JiT's recipe is the shared one
    assert native["hdfm"].run_id() == shared["hdfm"].run_id()
    ihdm, bdm = native["ihdm"], native["blurring_diffusion"]
    assert ihdm.backbone == bdm.backbone == "unet" and not ihdm.conditional and not bdm.conditional
    assert ihdm.backbone_params["time_scale"] == 100.0  # the suite's K
    assert (bdm.target, bdm.loss) == ("eps", "eps") and bdm.beta2 == ihdm.beta2 == 0.999
    assert ihdm.steps == shared["ihdm"].steps and ihdm.batch_size == shared["ihdm"].batch_size
    cond = suite.configs(protocol="native-cond")
    assert all(c.conditional for c in cond.values()) and cond["ihdm"].backbone == "unet"
    assert cond["noise_fm"].run_id() == shared["noise_fm"].run_id()
    assert protocols.label("ihdm", "native") == "ihdm-native" and protocols.label("ihdm", "shared") == "ihdm"
    with pytest.raises(ValueError, match="unknown protocol 'paper'"):
        protocols.overrides("ihdm", "paper")
    with pytest.raises(ValueError, match="no native recipe"):
        protocols.overrides("cold_blur", "native")


def test_a_sweep_spec_carries_a_protocol_per_run(tmp_path):
    from hdfm_bench.sweeps.spec import Sweep, SweepError

    spec = tmp_path / "p.toml"
    body = """name = "p"
[base]
task = "mnist"
steps = 10
[grid]
path = ["noise_fm"]
[[include]]
path = "ihdm"
path_params = {{ K = 50, sigma_blur_max = 20.0 }}
protocol = {protocols}
"""
    spec.write_text(body.format(protocols='["shared", "native"]'))
    runs = Sweep.load(spec, check=False).runs
    assert [r.config.backbone for r in runs] == ["vit", "vit", "unet"]
    shared, native = runs[1].config, runs[2].config
    assert shared.backbone_params["bottleneck"] == 64 and shared.conditional
    assert native.backbone_params["time_scale"] == 50.0 and not native.conditional  # the run's own K
    assert "protocol=native" in runs[2].label and shared.steps == native.steps == 10
    spec.write_text(body.format(protocols='"paper"'))
    with pytest.raises(SweepError, match="unknown protocol 'paper'; known: shared, native, native-cond"):
        Sweep.load(spec, check=False)
