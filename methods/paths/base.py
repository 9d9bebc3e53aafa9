"""The corruption-path contract shared by every path (docs/methods.md §2.10).

Convention everywhere: t ∈ [0, 1], t = 0 the source (noise / most corrupted), t = 1 the data;
data in [-1, 1]; x, eps shaped (B, C, H, W) for images or (B, D) for 1-D signals; t shaped (B,).
Random draws (eps, the uniforms of :meth:`Path.sample_t`) are always passed in.

Predictions are handled through one idea (docs/methods.md §2.4–2.5): given z, each predictable
quantity q ∈ {x, eps, v, ...} is, per basis coefficient, an affine function of the data,
``q = a_q ⊙ x + b_q ⊙ z``. A path supplies (a_q, b_q) in its basis (pixels for scalar-gain
paths, DCT coefficients for spectral ones) through :meth:`Path.coefficients`; every conversion
is then ``q_dst = (a_dst / a_src)(q_src − b_src z) + b_dst z`` and a loss in space S on a
prediction of kind P is the P-error weighted per coefficient by ``a_S / a_P``.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import array_api_compat as aac

from hdfm_bench.core.registry import Registry, class_registry

from .. import spectral
from .._xp import Array, check_data, check_like, check_t, per_sample, same_library


def check_output(pred: Array, ref: Array, ref_name: str = "x") -> None:
    """A network's prediction must be an array of ``ref``'s library and shape (one value per pixel)."""
    if not hasattr(pred, "shape") or tuple(pred.shape) != tuple(ref.shape):
        got = tuple(pred.shape) if hasattr(pred, "shape") else type(pred).__name__
        raise ValueError(f"the network output has shape {got}; expected {tuple(ref.shape)}, the shape of {ref_name}")
    if not same_library(pred, ref):  # shape and library only: no read-back inside a sampler's loop
        raise ValueError(f"the network output is a {type(pred).__module__}.{type(pred).__name__} but {ref_name} is a "
                         f"{type(ref).__module__}.{type(ref).__name__}; pass arrays of one library")


class ConfigError(ValueError):
    """A bad name, parameter or combination; the message is one line naming the problem."""


TARGETS: dict[str, str] = {
    "x": "the clean data x (JiT's x-prediction)",
    "eps": "the unit-normal noise draw ε",
    "v": "the path velocity dz/dt (with the path's clamps near the endpoints)",
    "prev_mean": "IHDM's previous-level mean B_{k-1}x, predicted as a residual on z (docs/methods.md §4.3)",
}

NORMS = ("l2", "l1")


def require(cond: bool, msg: str) -> None:
    if not cond:
        raise ConfigError(msg)


@dataclasses.dataclass(frozen=True)
class Path:
    """Base class: a registered corruption path with validated, documented parameters.

    Subclasses are frozen dataclasses; each field is a parameter whose ``metadata['doc']``
    says what it is and where its default comes from.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    gaussian: ClassVar[bool] = True
    #: what a network may predict on this path
    targets: ClassVar[tuple[str, ...]] = ("x", "eps", "v")
    #: what predictions can be converted into (a sampler asks for one of these)
    kinds: ClassVar[tuple[str, ...]] = ("x", "eps", "v")
    loss_spaces: ClassVar[tuple[str, ...]] = ("x", "eps", "v")
    default_norm: ClassVar[str] = "l2"
    default_target: ClassVar[str] = "x"
    default_loss: ClassVar[str] = "x"
    default_sampler: ClassVar[str] = "euler"
    #: the default sampler's budget in steps (None: the sampler's own, e.g. the path's levels)
    default_steps: ClassVar[int | None] = None
    #: True when ``prior`` needs training data (docs/methods.md §2.9: IHDM, cold diffusion)
    data_prior: ClassVar[bool] = False
    #: True when blur acts per frequency (conversions happen in DCT space).
    spectral: ClassVar[bool] = True

    # ---- discrete levels ----------------------------------------------------------------
    @property
    def levels(self) -> int | None:
        """Number of discrete levels K (None for continuous-time paths)."""
        return None

    def t_of_level(self, k: Array | int) -> Array | float:
        """Level k ∈ {0..K} ↦ t = 1 − k/K (docs/methods.md §2.1)."""
        require(self.levels is not None, f"path '{self.name}' is continuous: it has no levels")
        return 1.0 - k / self.levels

    def level_of_t(self, t: Array) -> Array:
        """t ↦ the nearest level k = round(K (1 − t)) as an integer array."""
        require(self.levels is not None, f"path '{self.name}' is continuous: it has no levels")
        xp = aac.array_namespace(t)
        return xp.astype(xp.round(self.levels * (1.0 - t)), xp.int32)

    # ---- the contract ---------------------------------------------------------------------
    def sample_t(self, u: Array) -> Array:
        """Map uniform draws u ∈ (0, 1), shape (B,), to the path's training-time distribution."""
        return u

    def corrupt(self, x: Array, eps: Array, t: Array) -> Array:
        """z_t for data x, noise draw eps (same shape) and times t (B,)."""
        self._check(x, eps, t)
        return self._corrupt(x, eps, t)

    def velocity(self, x: Array, eps: Array, t: Array) -> Array:
        """The exact dz/dt of :meth:`corrupt` (no clamps)."""
        raise ConfigError(f"path '{self.name}' has no velocity: it is not a Gaussian path")

    def prior(self, eps: Array, data: Array | None = None) -> Array:
        """A draw from the source at t = 0 given a standard-normal draw eps (and data if needed)."""
        raise NotImplementedError

    def coefficients(self, kind: str, t: Array, like: Array) -> tuple[Array, Array]:
        """(a, b) with q_kind = a ⊙ x + b ⊙ z per basis coefficient, clamps included."""
        raise NotImplementedError

    # ---- bases ----------------------------------------------------------------------------
    def to_basis(self, v: Array) -> Array:
        return spectral.dct(v) if self.spectral else v

    def from_basis(self, v: Array) -> Array:
        return spectral.idct(v) if self.spectral else v

    # ---- predictions ------------------------------------------------------------------------
    def refusal(self, target: str, loss_space: str | None = None) -> str | None:
        """Why (target, loss_space) cannot be used on this path, or None when it can."""
        if target not in TARGETS:
            return f"unknown target '{target}'; known: {', '.join(TARGETS)}"
        if target not in self.targets:
            return f"path '{self.name}' cannot use target '{target}' (supported: {', '.join(self.targets)})"
        if loss_space is not None and loss_space not in self.loss_spaces:
            return (f"path '{self.name}' cannot compute a loss in space '{loss_space}' "
                    f"(supported: {', '.join(self.loss_spaces)})")
        return None

    def check_combination(self, target: str, loss_space: str | None = None) -> None:
        reason = self.refusal(target, loss_space)
        if reason:
            raise ConfigError(reason)

    def conversion_refusal(self, src: str, dst: str) -> str | None:
        """Why a ``src`` prediction cannot be turned into ``dst`` on this path, or None."""
        reason = self.refusal(src)
        if reason:
            return reason
        if dst not in self.kinds:
            return f"path '{self.name}' has no '{dst}' (kinds: {', '.join(self.kinds)})"
        return None

    def convert(self, pred: Array, src: str, dst: str, z: Array, t: Array) -> Array:
        """Convert a prediction of kind ``src`` into kind ``dst`` given z and t (docs/methods.md §2.4)."""
        check_output(pred, z, "z")
        if src == dst:
            return pred
        reason = self.conversion_refusal(src, dst)
        if reason:
            raise ConfigError(reason)
        a_s, b_s = self.coefficients(src, t, z)
        a_d, b_d = self.coefficients(dst, t, z)
        zb = self.to_basis(z)
        out = (a_d / _nonzero(a_s)) * (self.to_basis(pred) - b_s * zb) + b_d * zb
        return self.from_basis(out)

    def ode_velocity(self, raw: Array, target: str, z: Array, t: Array) -> Array:
        """E[ż | z] from a raw prediction: what ODE samplers integrate (docs/methods.md §2.6)."""
        return self.convert(raw, target, "v", z, t)

    def regression_target(self, kind: str, x: Array, eps: Array, t: Array, z: Array) -> Array:
        """What a network predicting ``kind`` regresses onto (x, the true eps, or a_q x + b_q z)."""
        if kind == "x":
            return x
        if kind == "eps":
            return eps
        a, b = self.coefficients(kind, t, z)
        return self.from_basis(a * self.to_basis(x) + b * self.to_basis(z))

    def loss(self, raw: Array, target: str, loss_space: str, x: Array, eps: Array, t: Array,
             z: Array, norm: str | None = None) -> Array:
        """Per-sample loss (B,) of a raw prediction of kind ``target`` measured in ``loss_space``.

        Equals ``mean |convert(raw, target→S) − q_S|`` (docs/methods.md §2.5): the ``target``-error
        weighted per coefficient by a_S / a_target; for the L2 norm it is evaluated in the
        path's orthonormal basis (Parseval), so no inverse transform is needed.
        """
        norm = norm or self.default_norm
        require(norm in NORMS, f"unknown loss norm '{norm}'; known: {', '.join(NORMS)}")
        check_output(raw, x)
        xp = aac.array_namespace(raw)
        axes = tuple(range(1, raw.ndim))
        if loss_space == target:
            err = raw - self.regression_target(target, x, eps, t, z)
        else:
            a_s, _ = self.coefficients(loss_space, t, z)
            a_p, _ = self.coefficients(target, t, z)
            tgt = self.regression_target(target, x, eps, t, z)
            err = (a_s / _nonzero(a_p)) * self.to_basis(raw - tgt)
            if norm == "l1":
                err = self.from_basis(err)
        if norm == "l2":
            return xp.mean(err * err, axis=axes)
        return xp.mean(xp.abs(err), axis=axes)

    # ---- helpers ------------------------------------------------------------------------------
    def _check(self, x: Array, eps: Array | None, t: Array) -> None:
        check_data(x, "x")
        if eps is not None:
            check_like(eps, x, "eps")
        check_t(t, x.shape[0])

    def _corrupt(self, x: Array, eps: Array, t: Array) -> Array:
        raise NotImplementedError

    @classmethod
    def parameters(cls) -> list[dict]:
        """[{name, type, default, doc}] for every parameter (used by ``hdfm-bench list``)."""
        return [
            {"name": f.name, "type": f.type if isinstance(f.type, str) else f.type.__name__,
             "default": f.default, "doc": f.metadata.get("doc", "")}
            for f in dataclasses.fields(cls)
        ]


def _nonzero(a: Array) -> Array:
    """``a`` with exact zeros replaced by the dtype's tiny value (sign-preserving elsewhere)."""
    xp = aac.array_namespace(a)
    tiny = xp.finfo(a.dtype).tiny
    return xp.where(a == 0, tiny, a)


def field(default, doc: str):
    """A path parameter with its documentation."""
    return dataclasses.field(default=default, metadata={"doc": doc})




#: every corruption path by name (registration order is the order of ``hdfm-bench list``)
PATHS: Registry[type[Path]] = class_registry("path", Path, error=ConfigError, dataclass=True)
#: ``@register_path`` on a Path subclass adds it under its ``name`` (refuses a duplicate, in one line)
register_path = PATHS.register


__all__ = ["Path", "ConfigError", "TARGETS", "NORMS", "PATHS", "register_path", "require", "field", "per_sample"]
