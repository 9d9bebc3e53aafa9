"""Why a method fails: the linear-estimator floor of its target and the pass-through fraction of its ε̂.

Both are defined for spectral Gaussian paths z_t = A_t x + σ(t) ε with A_t diagonal in the DCT basis
(docs/methods.md §2.2); docs/methods.md §15 derives them and says how to read them.

* :func:`linear_floor`: the mean squared error of the best *affine* estimator of a prediction kind
  from z_t, given the data's mean and covariance (LMMSE; it depends on second moments only). A network
  that is trained should beat it; a held-out loss above it says the network is not (yet) using z_t.
* :func:`pass_through`: the slope of the network's prediction on the noise ε, per frequency band,
  divided by the slope of the true target. Where a kind must carry the input's noise (ε̂ where a
  frequency is still blurred, IHDM's residual −σε), a fraction c < 1 of it is missing from the output,
  and the sampler turns the missing part into signal (docs/methods.md §5.4).
"""
from __future__ import annotations

import numpy as np

from .paths.base import ConfigError, Path

#: above this many coefficients (C·H·W) the D × D covariance is not formed (64×64×3 would need 1.2 GB)
MAX_COVARIANCE_DIM = 4096


def gains(path: Path, kind: str, t: float, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(α, a, b, σ) at time t as flat float64 arrays of C·H·W coefficients: z̃ = α ⊙ x̃ + σ ε̃ and the
    kind's coefficients kind̃ = a ⊙ x̃ + b ⊙ z̃ in the DCT basis (docs/methods.md §2.2, §2.4)."""
    if not hasattr(path, "alpha"):
        raise ConfigError(f"path '{path.name}' is not a spectral Gaussian path: it has no linear floor or "
                          "pass-through (docs/methods.md §15)")
    like = np.zeros((1, *shape))
    tt = np.array([float(t)])
    flat = [np.broadcast_to(np.asarray(v, dtype=np.float64), like.shape).reshape(-1)
            for v in (path.alpha(tt, like), *path.coefficients(kind, tt, like))]
    return flat[0], flat[1], flat[2], float(np.asarray(path.sigma(tt))[0])


def linear_floor(path: Path, kind: str, t: float, mean: np.ndarray, cov: np.ndarray) -> float:
    """Mean squared error per coefficient of the LMMSE estimate of ``kind`` from z_t.

    In the DCT basis (data mean μ, covariance Σ, A = diag α): the error covariance of x̃ is
    E = Σ − Σ A (A Σ A + σ² I)⁻¹ A Σ, and kind̃ = a ⊙ x̃ + b ⊙ z̃ with z̃ known, so the floor is
    Σ_i a_i² E_ii / D (docs/methods.md §15.1). ``cov`` may be the diagonal (a 1-D array of variances):
    then every coefficient is estimated alone (exact when the DCT decorrelates the data)."""
    alpha, a, _, sigma = gains(path, kind, t, tuple(mean.shape))
    if cov.ndim == 1:
        err = cov * sigma**2 / np.maximum(alpha**2 * cov + sigma**2, 1e-300)
        return float(np.mean(a**2 * err))
    sa = cov * alpha[None, :]  # Σ A
    m = alpha[:, None] * sa + sigma**2 * np.eye(len(alpha))  # A Σ A + σ² I
    gain = np.linalg.solve(m, sa.T)  # (A Σ A + σ² I)⁻¹ A Σ
    err_diag = np.diag(cov) - np.einsum("ij,ji->i", sa, gain)
    return float(np.mean(a**2 * np.maximum(err_diag, 0.0)))


def basis_moments(x_basis: np.ndarray, full: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(mean, covariance) of images already in the DCT basis, (N, C, H, W) → flat (D,), (D, D); the
    diagonal only (D,) when ``full`` is False or, by default, when D > :data:`MAX_COVARIANCE_DIM`."""
    flat = np.asarray(x_basis, dtype=np.float64).reshape(len(x_basis), -1)
    mean = flat.mean(axis=0)
    centred = flat - mean
    if full is None:
        full = flat.shape[1] <= MAX_COVARIANCE_DIM
    cov = centred.T @ centred / max(1, len(flat) - 1) if full else centred.var(axis=0, ddof=1)
    return mean.reshape(np.shape(x_basis)[1:]), cov


def pass_through(pred_basis: np.ndarray, eps_basis: np.ndarray, true_slope: np.ndarray,
                 bands: list[np.ndarray]) -> list[float]:
    """c per band: Σ_i cov(pred_i, ε̃_i) / Σ_i s_i var(ε̃_i) over the coefficients i of each band, with
    s_i the true target's slope on ε̃_i (1 for ε, b_i σ for a kind a x̃ + b z̃; docs/methods.md §15.2).
    ``pred_basis`` and ``eps_basis`` are (N, C, H, W) in the DCT basis, ``bands`` boolean (H, W) masks;
    a band where the target does not depend on ε (s = 0) gives NaN."""
    p = np.asarray(pred_basis, dtype=np.float64)
    e = np.asarray(eps_basis, dtype=np.float64)
    pc, ec = p - p.mean(axis=0), e - e.mean(axis=0)
    cov = (pc * ec).mean(axis=0)  # (C, H, W)
    var = (ec * ec).mean(axis=0)
    slope = np.broadcast_to(np.asarray(true_slope, dtype=np.float64).reshape(-1), cov.size).reshape(cov.shape)
    out = []
    for mask in bands:
        den = float((slope * var)[..., mask].sum())
        out.append(float(cov[..., mask].sum()) / den if abs(den) > 1e-12 else float("nan"))
    return out


__all__ = ["MAX_COVARIANCE_DIM", "gains", "linear_floor", "basis_moments", "pass_through"]
