"""``--backend jax``: training a RunConfig with the JAX trainer (exact resume, checkpoints readable by
torch) and sampling a JAX run."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from hdfm_bench.backbones.jax import twin
from hdfm_bench.core.config import RunConfig
from hdfm_bench.training import Interrupted, load_run, train

TINY = {"size": "tiny", "patch": 2, "width": 32, "depth": 2, "heads": 2, "bottleneck": 16}


def _cfg(tmp_path, **kw):
    return RunConfig.from_mapping({"task": "digits", "backbone": "vit", "backbone_params": TINY, "steps": 40,
                                   "batch_size": 32, "lr": 3e-3, "warmup": 5, "ema_decays": [0.9],
                                   "checkpoint_every": 15, "backend": "jax", "out_dir": str(tmp_path), **kw})


def test_jax_run_trains_resumes_exactly_and_loads_in_torch(tmp_path):
    cfg = _cfg(tmp_path / "a")
    torch_cfg = RunConfig.from_mapping({**cfg.to_dict(), "backend": "torch"})
    assert cfg.run_id() != torch_cfg.run_id()  # the backend is part of what a run is
    res = train(cfg, progress=False)
    losses = [loss for _, loss in res.record["history"]]
    assert res.record["budget"]["backend"] == "jax" and len(losses) == 40
    assert np.mean(losses[-10:]) < 0.8 * np.mean(losses[:5])  # it learns

    # killed after step 20 (last checkpoint at 15), resumed: the same weights as the straight run
    cfg2 = _cfg(tmp_path / "b")
    with pytest.raises(Interrupted):
        train(cfg2, progress=False, stop_at=20)
    res2 = train(cfg2, progress=False)
    assert res2.record["starts"] == [0, 15]
    # its TensorBoard curves (training.tblog) hold each step once, as the history does
    acc = EventAccumulator(str(cfg2.run_dir() / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("train/loss")] == [tuple(h) for h in res2.record["history"]]
    assert [e.step for e in acc.Scalars("train/grad_norm")] == list(range(1, 41))
    for a, b in zip(res.model.state_dict().values(), res2.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)

    # the checkpoint is a torch state_dict under the torch names: load_run gives a torch model
    # whose forward equals the JAX twin's on the EMA weights
    _, model, state = load_run(res.run_dir, ema=0.9)
    assert state["backend"] == "jax" and state["step"] == 40
    z, t, y = torch.randn(4, 1, 8, 8), torch.rand(4), torch.tensor([1, 2, 3, 10])
    with torch.no_grad():
        ref = model(z, t, y).numpy()
    out = np.asarray(twin(model)(*(jnp.asarray(v.numpy()) for v in (z, t, y))))
    np.testing.assert_allclose(out, ref, atol=1e-5 * max(1.0, np.abs(ref).max()))


def test_sampling_a_jax_run_counts_nfe_and_crosses_to_torch(tmp_path):
    from hdfm_bench.sampling.generate import generate

    cfg = _cfg(tmp_path, steps=10, checkpoint_every=10)
    train(cfg, progress=False)
    seen = []
    out = generate(cfg.run_dir(), steps=4, cfg_scale=2.0, ema=0.9, n=20, seed=1,
                   callback=lambda step, t, z, batch_start, **_: seen.append((batch_start, t, type(z))))
    s = out["samples"]
    assert isinstance(s, torch.Tensor) and s.shape == (20, 1, 8, 8) and torch.isfinite(s).all()
    assert float(s.abs().max()) <= 1.0
    p = out["protocol"]
    assert p["backend"] == "jax" and p["sampler"] == "heun"
    assert p["nfe"] == 2 * (2 * 4 - 1)  # Heun on 4 steps, last step Euler; ×2 under CFG
    # the sampler runs per aligned block (16 images on a CPU): images 0-15, then 16-19
    assert [t for b, t, _ in seen if b == 0] == pytest.approx([0.25, 0.5, 0.75, 1.0]) and seen[0][2] is torch.Tensor
    assert sorted({b for b, _, _ in seen}) == [0, 16]
    again = generate(cfg.run_dir(), steps=4, cfg_scale=2.0, ema=0.9, n=20, seed=1)["samples"]
    assert torch.equal(again, s)  # seeded: reproducible


def test_suite_configs_take_the_backend():
    from hdfm_bench.experiments.suite import configs

    torch_cfgs, jax_cfgs = configs(quick=True), configs(quick=True, backend="jax")
    for name in torch_cfgs:
        assert jax_cfgs[name].backend == "jax" and jax_cfgs[name].run_id() != torch_cfgs[name].run_id()
        assert RunConfig.from_mapping({**jax_cfgs[name].to_dict(), "backend": "torch"}).run_id() == \
            torch_cfgs[name].run_id()
