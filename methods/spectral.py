"""Spectral tools: orthonormal DCT-II/III in matrix form, the eigenvalues Λ, the heat semigroup.

Source: docs/methods.md §1. For a signal of length N the orthonormal DCT-II matrix is
``D[k, n] = c_k cos(π k (2n + 1) / (2N))`` with ``c_0 = √(1/N)``, ``c_k = √(2/N)``; its
inverse (DCT-III) is ``Dᵀ``. Images (..., H, W) transform over the last two axes
(``X = D_H x D_Wᵀ``), 1-D signals (B, D) over the last axis (the toy experiments blur a
D-dimensional vector, HDFM Fig. 3).

Λ are the eigenvalues of the negative Laplacian (unit spacing, reflective boundaries) on the
DCT-II modes: ``λ_i = (π i / N)²`` per axis, ``Λ_ij = λ_i + λ_j``. The heat equation
``∂u/∂τ = Δu`` multiplies each coefficient by ``exp(-Λ τ)``; it is a Gaussian blur of std
``√(2τ)`` pixels and never changes the DC coefficient.

Matrices are built once per size in float64 (numpy) and cached per (namespace, dtype, device).
Heat-type gains factor into one 1-D blur per axis, ``exp(-Λ τ) = exp(-λ_H τ) ⊗ exp(-λ_W τ)``,
so :func:`heat_blur` costs two batched matmuls instead of the four of DCT → gain → inverse DCT.
"""
from __future__ import annotations

import functools
import math

import array_api_compat as aac
import numpy as np

from ._xp import Array

__all__ = [
    "dct_matrix",
    "eigenvalues",
    "spatial_axes",
    "dct",
    "idct",
    "apply_gain",
    "heat_blur",
    "laplacian",
]


@functools.cache
def _dct_matrix_f64(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * k * (2 * i + 1) / (2 * n)) * math.sqrt(2.0 / n)
    m[0] /= math.sqrt(2.0)
    m.setflags(write=False)
    return m


@functools.cache
def _axis_eigenvalues_f64(n: int) -> np.ndarray:
    lam = (np.pi * np.arange(n) / n) ** 2
    lam.setflags(write=False)
    return lam


_CACHE: dict[tuple, Array] = {}


def _cached(kind: str, n: int, ref: Array) -> Array:
    """Cached constant ``kind`` ∈ {dct, dct_t, lam} of size n on ``ref``'s namespace/dtype/device."""
    xp = aac.array_namespace(ref)
    key = (kind, n, xp.__name__, str(ref.dtype), str(aac.device(ref)))
    out = _CACHE.get(key)
    if out is None:
        base = {
            "dct": lambda: _dct_matrix_f64(n),
            "dct_t": lambda: np.ascontiguousarray(_dct_matrix_f64(n).T),
            "lam": lambda: _axis_eigenvalues_f64(n),
        }[kind]()
        out = xp.asarray(np.array(base), dtype=ref.dtype, device=aac.device(ref))
        if "Tracer" not in type(out).__name__:  # under jax.jit the constant is traced: rebuild per trace
            _CACHE[key] = out
    return out


def spatial_axes(x: Array) -> int:
    """Number of trailing axes that are spatial: 1 for (B, D) signals, 2 for (B, C, H, W) images."""
    if x.ndim == 2:
        return 1
    if x.ndim == 4:
        return 2
    raise ValueError(
        f"array has shape {tuple(x.shape)}; expected (B, C, H, W) images or (B, D) signals"
    )


def dct_matrix(n: int, like: Array) -> Array:
    """The orthonormal DCT-II matrix of size n (rows = frequencies) on ``like``'s namespace."""
    return _cached("dct", n, like)


def eigenvalues(x: Array) -> Array:
    """Λ for the spatial shape of ``x``: shape (D,) for signals, (H, W) for images (docs/methods.md §1)."""
    xp = aac.array_namespace(x)
    if spatial_axes(x) == 1:
        return _cached("lam", x.shape[-1], x)
    lh = _cached("lam", x.shape[-2], x)
    lw = _cached("lam", x.shape[-1], x)
    return xp.reshape(lh, (-1, 1)) + xp.reshape(lw, (1, -1))


def _right(x: Array, m: Array) -> Array:
    """x @ m over the last axis, m of shape (N, N) or per-sample (B, N, N)."""
    xp = aac.array_namespace(x)
    if m.ndim == 2:
        return xp.matmul(x, m)
    b, n = x.shape[0], x.shape[-1]
    # One batched matmul over (B, rest, N): far cheaper than broadcasting m over channels.
    y = xp.matmul(xp.reshape(x, (b, -1, n)), m)
    return xp.reshape(y, x.shape)


def _left(m: Array, x: Array) -> Array:
    """m @ x over the second-last axis, m of shape (N, N) or per-sample (B, N, N); x (B, C, H, W)."""
    xp = aac.array_namespace(x)
    if m.ndim == 3:
        m = m[:, None, :, :]
    return xp.matmul(m, x)


def dct(x: Array) -> Array:
    """Orthonormal DCT-II over the spatial axes (last for (B, D), last two for (B, C, H, W))."""
    if spatial_axes(x) == 1:
        return _right(x, _cached("dct_t", x.shape[-1], x))
    y = _right(x, _cached("dct_t", x.shape[-1], x))
    return _left(_cached("dct", x.shape[-2], x), y)


def idct(x: Array) -> Array:
    """Orthonormal DCT-III (the inverse of :func:`dct`) over the spatial axes."""
    if spatial_axes(x) == 1:
        return _right(x, _cached("dct", x.shape[-1], x))
    y = _right(x, _cached("dct", x.shape[-1], x))
    return _left(_cached("dct_t", x.shape[-2], x), y)


def apply_gain(x: Array, gain: Array) -> Array:
    """``idct(gain ⊙ dct(x))``: any per-frequency multiplier (broadcast against dct(x))."""
    return idct(gain * dct(x))


def laplacian(x: Array) -> Array:
    """Δx with reflective boundaries: ``idct(-Λ ⊙ dct(x))`` (docs/methods.md §1, §6.2)."""
    return apply_gain(x, -eigenvalues(x))


def _axis_blur(n: int, tau: Array, ref: Array) -> Array:
    """Per-sample 1-D heat operators ``Dᵀ diag(exp(-λ τ_b)) D``, shape (B, n, n)."""
    xp = aac.array_namespace(ref)
    d = _cached("dct", n, ref)
    g = xp.exp(-xp.reshape(tau, (-1, 1)) * _cached("lam", n, ref))  # (B, n)
    return xp.matmul(_cached("dct_t", n, ref)[None, :, :] * g[:, None, :], d)


def heat_blur(x: Array, tau: Array | float) -> Array:
    """Run the heat equation for time τ: ``idct(exp(-Λ τ) ⊙ dct(x))`` (docs/methods.md §1).

    ``tau`` is a python float (one blur for the batch) or a (B,) array (one per sample).
    Computed as one 1-D blur matrix per axis (symmetric, so it is its own transpose),
    two batched matmuls in all.
    """
    xp = aac.array_namespace(x)
    n_sp = spatial_axes(x)
    if isinstance(tau, (int, float)):
        tau = xp.full((1,), float(tau), dtype=x.dtype, device=aac.device(x))
        shared = True
    else:
        if tau.ndim != 1 or tau.shape[0] != x.shape[0]:
            raise ValueError(f"tau has shape {tuple(tau.shape)}; expected ({x.shape[0]},) or a float")
        shared = False
    if n_sp == 1 and not shared:
        # 1-D signals (the toy's D coordinates): one n×n operator per sample would cost B·n³ to
        # build; DCT → gain → inverse DCT costs 4·B·n² (at n = 512, ~250× less)
        g = xp.exp(-xp.reshape(tau, (-1, 1)) * _cached("lam", x.shape[-1], x))
        return idct(dct(x) * g)
    mw = _axis_blur(x.shape[-1], tau, x)
    if shared:
        mw = mw[0]
    if n_sp == 1:
        return _right(x, mw)
    mh = mw if x.shape[-2] == x.shape[-1] else _axis_blur(x.shape[-2], tau, x)
    if shared and mh.ndim == 3:
        mh = mh[0]
    return _left(mh, _right(x, mw))
