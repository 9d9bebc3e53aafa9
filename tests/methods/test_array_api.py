"""numpy / torch / jax give the same values; gradients flow in torch and jax (grad and jit)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from hdfm_bench.methods import Objective, get_sampler, spectral
from tests.helpers import data, make_path

NAMES = ["noise_fm", "hdfm", "hdfm_code", "blurring_diffusion", "ihdm", "cold_blur"]


SHAPE = (3, 2, 8, 8)


T = np.array([0.15, 0.5, 0.85])


def _to(backend, a):
    a = np.asarray(a, dtype=np.float32)
    return {"numpy": lambda: a, "torch": lambda: torch.from_numpy(a.copy()), "jax": lambda: jnp.asarray(a)}[backend]()


def _np(a):
    return np.asarray(a.detach() if isinstance(a, torch.Tensor) else a, dtype=np.float64)


def _quantities(name, x, eps, t, pred):
    path = make_path(name)
    obj = Objective(path)
    z = path.corrupt(x, eps, t)
    out = {"z": z, "loss": obj.loss(pred, x, eps, t, z), "x_hat": path.convert(pred, obj.target, "x", z, t)
           if obj.target != "prev_mean" else pred}
    if path.gaussian:
        out["v"] = path.velocity(x, eps, t)
    return out


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("backend", ["numpy", "torch", "jax"])
def test_backends_agree_with_float64_reference(name, backend):
    x, eps = data(SHAPE, seed=0)
    pred, _ = data(SHAPE, seed=1)
    ref = _quantities(name, x, eps, T, pred)
    got = _quantities(name, *(_to(backend, a) for a in (x, eps, T, pred)))
    for key, want in ref.items():
        scale = max(1.0, float(np.abs(want).max()))
        np.testing.assert_allclose(_np(got[key]), want, atol=1e-5 * scale, err_msg=f"{backend} {key}")


@pytest.mark.parametrize("name", ["noise_fm", "hdfm", "blurring_diffusion"])
def test_sampler_runs_identically_on_every_backend(name):
    path = make_path(name)
    z0, _ = data((2, 1, 8, 8), seed=2)

    def denoise(z, t):  # a backend-neutral stand-in for a network
        return 0.5 * z

    ref = get_sampler("heun", steps=6).sample(path, denoise, z0, "x").samples
    for backend in ("torch", "jax"):
        out = get_sampler("heun", steps=6).sample(path, denoise, _to(backend, z0), "x").samples
        np.testing.assert_allclose(_np(out), ref, atol=1e-5)


@pytest.mark.parametrize("name", ["noise_fm", "hdfm", "blurring_diffusion", "ihdm"])
def test_gradients_flow_in_torch_and_jax_and_agree(name):
    path = make_path(name)
    obj = Objective(path, "x", "v") if "v" in path.loss_spaces else Objective(path)  # loss depends on x
    x, eps = data(SHAPE, seed=3)
    pred, _ = data(SHAPE, seed=4)

    pt = torch.tensor(pred, dtype=torch.float32, requires_grad=True)
    xt = torch.tensor(x, dtype=torch.float32, requires_grad=True)
    tt = torch.tensor(T, dtype=torch.float32)
    et = torch.tensor(eps, dtype=torch.float32)
    obj.loss(pt, xt, et, tt).sum().backward()

    def f(p, xx):
        return jnp.sum(obj.loss(p, xx, jnp.asarray(eps, jnp.float32), jnp.asarray(T, jnp.float32)))

    gp, gx = jax.grad(f, argnums=(0, 1))(jnp.asarray(pred, jnp.float32), jnp.asarray(x, jnp.float32))
    gp_jit, _ = jax.jit(jax.grad(f, argnums=(0, 1)))(jnp.asarray(pred, jnp.float32), jnp.asarray(x, jnp.float32))
    for g in (pt.grad, xt.grad):
        assert torch.isfinite(g).all() and g.abs().sum() > 0
    scale = float(np.abs(np.asarray(gp)).max())
    np.testing.assert_allclose(pt.grad.numpy(), np.asarray(gp), atol=1e-5 * scale)
    np.testing.assert_allclose(xt.grad.numpy(), np.asarray(gx), atol=1e-5 * max(scale,
                                                                                float(np.abs(np.asarray(gx)).max())))
    np.testing.assert_allclose(np.asarray(gp_jit), np.asarray(gp), atol=1e-5 * scale)


def test_gradient_of_blur_matches_finite_difference_in_time():
    # d/dτ heat_blur(x, τ) = Δ heat_blur(x, τ): torch autograd through the matrix construction.
    x = torch.tensor(data((2, 1, 8, 8))[0])
    tau = torch.tensor([0.3, 1.1], dtype=torch.float64, requires_grad=True)
    y = spectral.heat_blur(x, tau)
    w = torch.randn_like(y)
    (g,) = torch.autograd.grad((y * w).sum(), tau)
    want = (spectral.laplacian(y.detach()) * w).sum(dim=(1, 2, 3))
    torch.testing.assert_close(g, want, rtol=1e-8, atol=1e-10)


def test_jit_matches_eager():
    path = make_path("hdfm")
    x, eps = (jnp.asarray(a, jnp.float32) for a in data(SHAPE, seed=5))
    t = jnp.asarray(T, jnp.float32)
    eager = path.corrupt(x, eps, t)
    jitted = jax.jit(path.corrupt)(x, eps, t)
    np.testing.assert_allclose(np.asarray(jitted), np.asarray(eager), atol=1e-6)
