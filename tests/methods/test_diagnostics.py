"""The diagnostics' formulas (docs/methods.md §15) against empirical fits, and the §5.4 explanation of
Blurring Diffusion's ε-recipe against an oracle sampler."""
from __future__ import annotations

import numpy as np
import pytest

from hdfm_bench.methods import diagnostics, spectral
from hdfm_bench.methods.paths import get_path
from hdfm_bench.methods.samplers.base import times, uniform_grid


def _random_cov(d: int, rng) -> np.ndarray:
    m = rng.standard_normal((d, d)) * np.linspace(1.0, 0.05, d)[None, :]
    return m @ m.T / d + 1e-3 * np.eye(d)


@pytest.mark.parametrize("name,kind,t", [("ihdm", "prev_mean", 0.6), ("blurring_diffusion", "x", 0.3),
                                         ("noise_fm", "x", 0.5), ("hdfm", "x", 0.4)])
def test_linear_floor_is_the_error_of_the_fitted_least_squares_estimator(name, kind, t):
    """The closed-form LMMSE floor equals the held-out MSE of an affine least-squares fit of the target
    on z (in pixels, 200k Gaussian samples of a correlated 4x4 image), to sampling error."""
    rng = np.random.default_rng(0)
    path = get_path(name, **({"K": 20, "sigma_blur_max": 3.0} if name == "ihdm" else {}))
    shape, d, n = (1, 4, 4), 16, 200_000
    cov, mean = _random_cov(d, rng), rng.standard_normal(d) * 0.3
    xb = (mean + rng.multivariate_normal(np.zeros(d), cov, size=n)).reshape(n, *shape)
    x = path.from_basis(xb)  # the moments are those of the DCT coefficients
    eps = rng.standard_normal(x.shape)
    tt = np.full(n, t)
    z = path.corrupt(x, eps, tt)
    target = path.regression_target(kind, x, eps, tt, z).reshape(n, -1)
    feats = np.concatenate([z.reshape(n, -1), np.ones((n, 1))], axis=1)
    half = n // 2
    coef, *_ = np.linalg.lstsq(feats[:half], target[:half], rcond=None)
    empirical = float(np.mean((feats[half:] @ coef - target[half:]) ** 2))
    floor = diagnostics.linear_floor(path, kind, t, mean.reshape(shape), cov)
    assert floor > 0
    assert empirical == pytest.approx(floor, rel=0.03)
    # the diagonal version is exact when the data are decorrelated by the DCT, and never below the full one
    diag = np.diag(np.diag(cov))
    assert diagnostics.linear_floor(path, kind, t, mean.reshape(shape), np.diag(cov)) == pytest.approx(
        diagnostics.linear_floor(path, kind, t, mean.reshape(shape), diag), rel=1e-10)
    assert diagnostics.linear_floor(path, kind, t, mean.reshape(shape), np.diag(cov)) >= floor * (1 - 1e-9)


def test_basis_moments_full_and_diagonal():
    rng = np.random.default_rng(1)
    xb = rng.standard_normal((500, 1, 3, 3))
    mean, cov = diagnostics.basis_moments(xb)
    np.testing.assert_allclose(cov, np.cov(xb.reshape(500, -1), rowvar=False), rtol=1e-12)
    np.testing.assert_allclose(mean, xb.mean(axis=0), rtol=1e-12)
    _, var = diagnostics.basis_moments(xb, full=False)
    np.testing.assert_allclose(var, np.diag(cov), rtol=1e-12)


def test_pass_through_recovers_the_fraction_per_band_and_the_target_slope():
    rng = np.random.default_rng(2)
    eps = rng.standard_normal((4000, 1, 8, 8))
    masks = [np.zeros((8, 8), bool), np.zeros((8, 8), bool)]
    masks[0][4:, :] = True
    masks[1][:4, :] = True
    frac = np.where(masks[0], 0.3, 0.9)
    pred = frac * eps + 0.5 * rng.standard_normal(eps.shape)  # a part of the noise plus unrelated error
    c = diagnostics.pass_through(pred, eps, np.ones(64), masks)
    assert c == pytest.approx([0.3, 0.9], abs=0.03)
    # IHDM's residual carries −σ ε: a prediction with −0.5 σ ε passes half of it
    sigma = 0.02
    c = diagnostics.pass_through(-0.5 * sigma * eps, eps, np.full(64, -sigma), masks)
    assert c == pytest.approx([0.5, 0.5], rel=1e-9)
    assert np.isnan(diagnostics.pass_through(pred, eps, np.zeros(64), masks)).all()  # no noise in the target


def _oracle(path, c: float, white: float = 0.0, steps: int = 50, top: float = 0.35) -> float:
    """RMS error of the posterior sampler fed ε̂ = the true ε of z (oracle x), with the top ``top`` of
    the frequencies scaled by c and white errors of std ``white`` added (docs/methods.md §5.4)."""
    rng = np.random.default_rng(0)
    x = spectral.heat_blur(np.clip(rng.standard_normal((4, 1, 28, 28)), -1, 1), 1.0)
    lam = spectral.eigenvalues(x)
    high = (lam >= np.quantile(lam, 1 - top)).astype(x.dtype)
    z = path.prior(rng.standard_normal(x.shape))
    grid = uniform_grid(steps)
    for i, (t, t_next) in enumerate(zip(grid[:-1], grid[1:])):
        ta, tb = times(z, t), times(z, t_next)
        e = path.to_basis(path.convert(x, "x", "eps", z, ta))
        e = e * (1 - high) + c * e * high + white * rng.standard_normal(e.shape)
        xhat = path.convert(path.from_basis(e), "eps", "x", z, ta)
        z = path.posterior_step(z, xhat, ta, tb, rng.standard_normal(x.shape) if i < steps - 1 else None)
    return float(np.sqrt(np.mean((z - x) ** 2)))


def test_bdm_eps_fails_by_missing_pass_through_not_by_the_division():
    """§5.4: white ε̂ errors stay small (the posterior step undoes the 1/(a d_min)); a missing fraction of
    the input's noise at high frequency is amplified by up to 1/(a(0) d_min) with blur, 1/a(0) without."""
    bdm = get_path("blurring_diffusion")
    plain = get_path("blurring_diffusion", sigma_blur_max=1e-6)  # the same schedule without blur
    assert _oracle(bdm, 1.0, white=0.1) < 0.01 and _oracle(plain, 1.0, white=0.1) < 0.01
    errors = [_oracle(bdm, c) for c in (0.0, 0.5, 0.7, 0.8, 1.0)]
    assert errors == sorted(errors, reverse=True)
    assert errors[0] > 1e4 and 1 < errors[1] < 50 and errors[3] < 0.05 and errors[4] < 0.005
    assert 20 < _oracle(plain, 0.0) < 500  # plain diffusion: only 1/a(0) ≈ 150 acts
