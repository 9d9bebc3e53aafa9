"""DCT against scipy, the heat semigroup, the separable blur against the dense gain."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.fft
import torch

from hdfm_bench.methods import spectral


@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (2, 1, 5, 12), (4, 7), (3, 32)])
def test_dct_matches_scipy_and_inverts(shape):
    x = np.random.default_rng(1).standard_normal(shape)
    axes = (-2, -1) if len(shape) == 4 else (-1,)
    ref = scipy.fft.dctn(x, type=2, norm="ortho", axes=axes)
    np.testing.assert_allclose(spectral.dct(x), ref, atol=1e-12)
    np.testing.assert_allclose(spectral.idct(spectral.dct(x)), x, atol=1e-12)
    np.testing.assert_allclose(spectral.idct(ref), scipy.fft.idctn(ref, type=2, norm="ortho", axes=axes), atol=1e-12)


def test_eigenvalues_are_laplacian_eigenvalues():
    # -Δ with reflective boundaries: second differences with mirrored ends, applied to each DCT mode.
    n = 9
    d = spectral.dct_matrix(n, np.zeros(1))
    lap = -2 * np.eye(n) + np.eye(n, k=1) + np.eye(n, k=-1)
    lap[0, 0] = lap[-1, -1] = -1  # Neumann (mirror) boundary of the DCT-II
    lam_discrete = -np.diag(d @ lap @ d.T)
    lam = spectral.eigenvalues(np.zeros((1, n)))
    # Continuous eigenvalues (π i/N)² vs the discrete 4 sin²(π i/2N): equal to second order.
    np.testing.assert_allclose(lam_discrete, 4 * np.sin(np.pi * np.arange(n) / (2 * n)) ** 2, atol=1e-12)
    # 4 sin²(θ/2) = θ² − θ⁴/12 + θ⁶/360 − …  with θ² = λ = (π i/N)²
    assert np.all(np.abs(lam_discrete - (lam - lam**2 / 12)) <= lam**3 / 300 + 1e-15)
    lam2 = spectral.eigenvalues(np.zeros((1, 1, 4, 6)))
    assert lam2.shape == (4, 6) and lam2[0, 0] == 0
    np.testing.assert_allclose(lam2[2, 3], np.pi**2 * (4 / 16 + 9 / 36))


@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (2, 2, 6, 10), (3, 16)])
def test_heat_semigroup_and_dc(shape):
    x = np.random.default_rng(2).standard_normal(shape)
    a = spectral.heat_blur(spectral.heat_blur(x, 0.7), 1.8)
    np.testing.assert_allclose(a, spectral.heat_blur(x, 2.5), atol=1e-12)
    # DC (the mean over the spatial axes) never changes, whatever the blur.
    axes = (-2, -1) if len(shape) == 4 else (-1,)
    for tau in (0.0, 3.0, 500.0):
        np.testing.assert_allclose(spectral.heat_blur(x, tau).mean(axis=axes), x.mean(axis=axes), atol=1e-12)
    np.testing.assert_allclose(spectral.heat_blur(x, 0.0), x, atol=1e-12)
    # Very long heat flow leaves only the mean.
    flat = np.broadcast_to(x.mean(axis=axes, keepdims=True), x.shape)
    np.testing.assert_allclose(spectral.heat_blur(x, 1e4), flat, atol=1e-10)


@pytest.mark.parametrize("shape", [(3, 2, 8, 6), (3, 16)])
def test_separable_blur_equals_dense_gain_per_sample(shape):
    x = np.random.default_rng(3).standard_normal(shape)
    tau = np.array([0.0, 0.4, 3.0])
    lam = spectral.eigenvalues(x)
    gain = np.exp(-lam[None] * tau.reshape((-1,) + (1,) * lam.ndim))
    if x.ndim == 4:
        gain = gain[:, None]
    np.testing.assert_allclose(spectral.heat_blur(x, tau), spectral.apply_gain(x, gain), atol=1e-12)


def test_gaussian_blur_width_matches_heat_time():
    # A centred delta blurred for τ = σ²/2 has spatial variance σ² (far from the borders).
    n, sigma = 129, 3.0
    x = np.zeros((1, n))
    x[0, n // 2] = 1.0
    y = spectral.heat_blur(x, sigma**2 / 2)[0]
    pos = np.arange(n) - n // 2
    assert abs(y.sum() - 1) < 1e-12
    assert abs((y * pos**2).sum() - sigma**2) < 1e-6


def test_laplacian_of_cosine_mode():
    n = 16
    i = 3
    grid = np.arange(n)
    mode = np.cos(np.pi * i * (2 * grid + 1) / (2 * n))[None, :]
    np.testing.assert_allclose(spectral.laplacian(mode), -(np.pi * i / n) ** 2 * mode, atol=1e-12)


def test_matrix_cache_per_dtype_and_namespace():
    a = spectral.dct_matrix(8, np.zeros(1, dtype=np.float32))
    b = spectral.dct_matrix(8, np.zeros(1, dtype=np.float32))
    c = spectral.dct_matrix(8, torch.zeros(1, dtype=torch.float64))
    assert a is b and a.dtype == np.float32
    assert isinstance(c, torch.Tensor) and c.dtype == torch.float64
    np.testing.assert_allclose(c.numpy() @ c.numpy().T, np.eye(8), atol=1e-12)


def test_heat_blur_rejects_bad_tau_shape():
    with pytest.raises(ValueError, match="tau has shape"):
        spectral.heat_blur(np.zeros((3, 8)), np.zeros(2))
