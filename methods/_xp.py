"""Array-API plumbing shared by every module of ``methods``.

All math in ``methods`` is written against the Python Array API standard through
``array_api_compat``, so one function serves numpy arrays, torch tensors (autograd intact)
and jax arrays (grad and jit intact). This module holds the few helpers that make that
convenient: namespace lookup, constants placed on the input's device and dtype, and the
input validation that gives every public function its one-line errors.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import array_api_compat as aac

Array = Any  # an Array-API array (numpy.ndarray, torch.Tensor, jax.Array)

_VALIDATE = True


@contextlib.contextmanager
def validation(enabled: bool) -> Iterator[None]:
    """Temporarily switch input validation (finite values, t range) on or off.

    Validation reads values back from the array (a device sync on GPUs); trainers on a GPU
    may switch it off inside their hot loop once the first steps have passed it.
    """
    global _VALIDATE
    previous, _VALIDATE = _VALIDATE, enabled
    try:
        yield
    finally:
        _VALIDATE = previous


def namespace(*arrays: Array):
    """The Array-API namespace shared by ``arrays`` (python scalars ignored)."""
    return aac.array_namespace(*[a for a in arrays if not isinstance(a, (int, float))])


def like(value: Any, ref: Array) -> Array:
    """``value`` as an array with the dtype and device of ``ref``."""
    xp = aac.array_namespace(ref)
    return xp.asarray(value, dtype=ref.dtype, device=aac.device(ref))


def is_traced(x: Array) -> bool:
    """True for a jax tracer (inside jit/grad/vmap), whose values cannot be read."""
    return any(c.__name__.endswith("Tracer") for c in type(x).__mro__)


def _concrete_bool(x: Array) -> bool | None:
    if not _VALIDATE or is_traced(x):
        return None
    return bool(x)


def check_finite(x: Array, name: str) -> None:
    """Raise ``ValueError`` if ``x`` holds NaN or Inf."""
    xp = aac.array_namespace(x)
    bad = _concrete_bool(xp.any(~xp.isfinite(x)))
    if bad:
        raise ValueError(f"{name} contains NaN or Inf values")


def check_data(x: Array, name: str = "x") -> None:
    """``x`` must be (B, C, H, W) images or (B, D) signals, finite, floating point."""
    if x.ndim not in (2, 4):
        raise ValueError(
            f"{name} has shape {tuple(x.shape)}; expected (B, C, H, W) images or (B, D) signals"
        )
    xp = aac.array_namespace(x)
    if not xp.isdtype(x.dtype, "real floating"):
        raise ValueError(f"{name} has dtype {x.dtype}; expected a real floating dtype")
    check_finite(x, name)


def same_library(a: Any, ref: Array) -> bool:
    try:
        aac.array_namespace(a, ref)
    except TypeError:  # not an array, or arrays of two libraries
        return False
    return True


def check_like(a: Array, ref: Array, name: str, ref_name: str = "x") -> None:
    """``a`` must be an array of the same library and shape as ``ref``, finite."""
    if not same_library(a, ref):
        raise ValueError(f"{name} is a {type(a).__module__}.{type(a).__name__} but {ref_name} is a "
                         f"{type(ref).__module__}.{type(ref).__name__}; pass arrays of one library")
    if tuple(a.shape) != tuple(ref.shape):
        raise ValueError(
            f"{name} has shape {tuple(a.shape)} but {ref_name} has shape {tuple(ref.shape)}; they must match"
        )
    check_finite(a, name)


def check_t(t: Array, batch: int | None = None) -> None:
    """``t`` must be a finite (B,) array in [0, 1] (t = 0 the source, t = 1 the data)."""
    if not hasattr(t, "ndim"):
        raise ValueError(f"t must be a (B,) array with one time per sample, got {type(t).__name__} {t!r}")
    if t.ndim != 1 or (batch is not None and t.shape[0] != batch):
        want = f"({batch},)" if batch is not None else "(B,)"
        raise ValueError(f"t has shape {tuple(t.shape)}; expected {want}, one time per sample")
    check_finite(t, "t")
    xp = aac.array_namespace(t)
    out = _concrete_bool(xp.any((t < 0) | (t > 1)))
    if out:
        raise ValueError(
            f"t must lie in [0, 1] (t = 0 source, t = 1 data); got values in "
            f"[{float(xp.min(t)):.4g}, {float(xp.max(t)):.4g}]"
        )


def per_sample(v: Array, x: Array) -> Array:
    """Reshape a (B,) array to broadcast against ``x`` of shape (B, ...)."""
    xp = aac.array_namespace(v)
    return xp.reshape(v, (v.shape[0],) + (1,) * (x.ndim - 1))


# Acklam's rational approximation of the inverse standard-normal CDF (relative error < 1.2e-9);
# the Array API standard has no erfinv, and logit-normal time sampling needs one.
_A = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02,
      1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00)
_B = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02,
      6.680131188771972e01, -1.328068155288572e01)
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00,
      -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00,
      3.754408661907416e00)


def _poly(coefs, v):
    out = coefs[0] * v
    for c in coefs[1:-1]:
        out = (out + c) * v
    return out + coefs[-1]


def ndtri(u: Array) -> Array:
    """Inverse of the standard normal CDF, elementwise, for u in (0, 1)."""
    xp = aac.array_namespace(u)
    p = xp.clip(u, 1e-12, 1.0 - 1e-12) if u.dtype != xp.float32 else xp.clip(u, 1e-7, 1.0 - 1e-7)
    q = p - 0.5
    r = q * q
    central = _poly(_A, r) * q / (_poly(_B + (1.0,), r))
    tail_p = xp.minimum(p, 1.0 - p)
    s = xp.sqrt(-2.0 * xp.log(tail_p))
    tail = _poly(_C, s) / _poly(_D + (1.0,), s)
    tail = xp.where(p < 0.5, tail, -tail)
    return xp.where(xp.abs(q) <= 0.5 - 0.02425, central, tail)
