"""The equinox twins: the ViT against the torch ViT (forward, weight round trip), and what they refuse."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from hdfm_bench.backbones import build_backbone
from hdfm_bench.backbones.jax import twin
from hdfm_bench.backbones.jax import vit as jvit
from hdfm_bench.core.config import RunConfig

TINY = {"size": "tiny", "patch": 2, "width": 32, "depth": 2, "heads": 2, "bottleneck": 16}


def _randomised_vit(**kw):
    torch.manual_seed(0)
    m = build_backbone("vit", shape=(1, 8, 8), num_classes=10, **{**TINY, **kw}).eval()
    with torch.no_grad():  # adaLN-Zero layers start at zero: perturb every weight so outputs depend on all
        for p in m.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return m


@pytest.mark.parametrize("kw", [{}, {"in_context_tokens": 2, "in_context_start": 1}, {"time_scale": 100.0}])
def test_vit_twin_matches_torch_forward(kw):
    m = _randomised_vit(**kw)
    g = torch.Generator().manual_seed(3)
    z, t = torch.randn(6, 1, 8, 8, generator=g), torch.rand(6, generator=g)
    y = torch.tensor([0, 3, 10, 9, 1, 10])  # 10 = the null class
    with torch.no_grad():
        ref = m(z, t, y).numpy()
    out = np.asarray(jax.jit(lambda mm, a, b, c: mm(a, b, c))(twin(m), *(jnp.asarray(v.numpy()) for v in (z, t, y))))
    assert np.abs(ref).max() > 0.1
    np.testing.assert_allclose(out, ref, atol=1e-5 * np.abs(ref).max())
    back = build_backbone("vit", shape=(1, 8, 8), num_classes=10, **{**TINY, **kw})
    back.load_state_dict(jvit.to_state_dict(twin(m)))  # names and shapes round-trip
    assert all(torch.equal(a, b) for a, b in zip(back.state_dict().values(), m.state_dict().values()))


def test_jax_backend_refuses_what_it_cannot_run():
    with pytest.raises(ValueError, match="backend jax: backbone 'unet' has no JAX twin"):
        twin(build_backbone("unet", shape=(1, 8, 8), size="tiny"))
    with pytest.raises(ValueError, match="dropout"):
        twin(build_backbone("vit", shape=(1, 8, 8), **{**TINY, "dropout": 0.1}))
    with pytest.raises(ValueError, match="backend must be one of torch, jax"):
        RunConfig(backend="tf")
