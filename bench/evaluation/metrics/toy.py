"""Distances between 2-D point clouds for the toy experiment (samples projected back by Pᵀ).

* Sliced Wasserstein-1 (Rabin et al. 2011; Bonneel et al. 2015): the mean over ``n_proj`` fixed
  random directions θ of the 1-D Wasserstein-1 distance between ⟨a, θ⟩ and ⟨b, θ⟩ — for equal
  sizes, the mean absolute difference of the sorted projections.
* MMD² with a sum of Gaussian kernels (Gretton et al. 2012), unbiased estimator, bandwidths
  covering the toy's scales (0.05 … 0.8; the data lie in the unit disc).
"""
from __future__ import annotations

import numpy as np

BANDWIDTHS = (0.05, 0.1, 0.2, 0.4, 0.8)


def _as_np(a) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"expected an (N, d) point cloud, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError("point cloud contains NaN or inf")
    return a


def sliced_wasserstein(a, b, n_proj: int = 256, seed: int = 0) -> float:
    """SW₁(a, b) over ``n_proj`` directions uniform on the circle (sphere), fixed by ``seed``."""
    a, b = _as_np(a), _as_np(b)
    if a.shape != b.shape:
        raise ValueError(f"sliced_wasserstein needs equal shapes, got {a.shape} and {b.shape}")
    theta = np.random.default_rng(seed).standard_normal((a.shape[1], n_proj))
    theta /= np.linalg.norm(theta, axis=0, keepdims=True)
    pa, pb = np.sort(a @ theta, axis=0), np.sort(b @ theta, axis=0)
    return float(np.abs(pa - pb).mean())


def mmd(a, b, bandwidths=BANDWIDTHS) -> float:
    """Unbiased MMD² with k(u, v) = Σ_h exp(−‖u − v‖² / (2 h²)) (can be slightly negative)."""
    a, b = _as_np(a), _as_np(b)

    def k(u, v):
        d2 = ((u[:, None, :] - v[None, :, :]) ** 2).sum(-1)
        return sum(np.exp(-d2 / (2 * h * h)) for h in bandwidths)

    kaa, kbb, kab = k(a, a), k(b, b), k(a, b)
    n, m = len(a), len(b)
    return float((kaa.sum() - np.trace(kaa)) / (n * (n - 1)) + (kbb.sum() - np.trace(kbb)) / (m * (m - 1))
                 - 2 * kab.mean())
