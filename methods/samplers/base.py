"""Sampler contract: generic over paths, counts the network evaluations it really makes.

A sampler integrates from the source (t = 0) to the data (t = 1). It receives a ``denoise(z, t)``
callable returning the network's raw output of kind ``target`` (t shaped (B,)), the starting
state ``z0`` (a draw from ``path.prior``), and, when stochastic, ``noise(step) -> standard
normal draw shaped like z``: random draws are passed in, never made here. ``nfe`` in the result
is the number of network evaluations made, i.e. calls × ``denoise.evals_per_call`` (a CFG
wrapper that runs two branches per call sets it to 2).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

import array_api_compat as aac

from hdfm_bench.core.registry import Registry, class_registry

from .._xp import Array, check_data
from ..paths.base import ConfigError, Path

Denoiser = Callable[[Array, Array], Array]
Noise = Callable[[int], Array]
Callback = Callable[..., Any]


@dataclasses.dataclass
class SampleResult:
    """Samples at t = 1 and the counted network evaluations."""

    samples: Array
    nfe: int
    calls: int


class _Counted:
    def __init__(self, fn: Denoiser):
        self.fn, self.calls = fn, 0
        self.per_call = int(getattr(fn, "evals_per_call", 1))

    def __call__(self, z: Array, t: Array) -> Array:
        self.calls += 1
        return self.fn(z, t)


@dataclasses.dataclass(frozen=True)
class Sampler:
    """Base class of registered samplers; fields are validated parameters."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    stochastic: ClassVar[bool] = False
    #: the kind the sampler needs from the network's output (converted by the path)
    needs: ClassVar[str] = "x"
    default_steps: ClassVar[int | None] = 50

    steps: int | None = None

    def __post_init__(self) -> None:
        if self.steps is not None and (not isinstance(self.steps, int) or self.steps < 1):
            raise ConfigError(f"sampler '{self.name}': steps must be a positive integer, got {self.steps!r}")

    # ---- compatibility ---------------------------------------------------------------------
    def path_refusal(self, path: Path) -> str | None:
        """Why this sampler cannot run on ``path`` (None when it can)."""
        return None

    def check(self, path: Path, target: str) -> None:
        """Refuse an incompatible (path, target) with a one-line reason."""
        reason = self.path_refusal(path) or path.conversion_refusal(target, self.needs)
        if reason:
            raise ConfigError(f"sampler '{self.name}' on path '{path.name}': {reason}")

    def num_steps(self, path: Path) -> int:
        return self.steps if self.steps is not None else self.default_steps

    def expected_nfe(self, path: Path) -> int:
        """Network evaluations per denoise branch for one run (what ``sample`` will count)."""
        raise NotImplementedError

    # ---- running -----------------------------------------------------------------------------
    def sample(self, path: Path, denoise: Denoiser, z0: Array, target: str | None = None,
               noise: Noise | None = None, callback: Callback | None = None) -> SampleResult:
        """Run from z0 at t = 0 to t = 1; ``callback(step=, t=, z=, xhat=)`` after each step."""
        target = target or path.default_target
        self.check(path, target)
        check_data(z0, "z0")
        if self.stochastic and noise is None:
            raise ConfigError(f"sampler '{self.name}' is stochastic: pass noise=callable(step) "
                              "returning a standard-normal draw shaped like z")
        counted = _Counted(denoise)
        z = self._run(path, counted, z0, target, noise, callback)
        return SampleResult(z, counted.calls * counted.per_call, counted.calls)

    def _run(self, path, denoise, z, target, noise, callback) -> Array:
        raise NotImplementedError

    @classmethod
    def parameters(cls) -> list[dict]:
        out = []
        for f in dataclasses.fields(cls):
            default = f.default
            if f.name == "steps":
                default = cls.default_steps if cls.default_steps is not None else "path levels"
            out.append({"name": f.name, "default": default, "doc": f.metadata.get("doc", "")})
        return out


def times(z: Array, t: float) -> Array:
    """A (B,) array filled with t on z's namespace, dtype and device."""
    xp = aac.array_namespace(z)
    return xp.full((z.shape[0],), t, dtype=z.dtype, device=aac.device(z))


def uniform_grid(n: int) -> list[float]:
    """JiT's grid: n + 1 points linear in [0, 1] (docs/methods.md §3.4)."""
    return [i / n for i in range(n + 1)]


def predict(path: Path, denoise: Denoiser, z: Array, t: float, target: str, kind: str) -> Array:
    """One network evaluation at (z, t), converted to ``kind`` by the path (``kind='v'``:
    the ODE velocity E[ż | z], :meth:`Path.ode_velocity`)."""
    tt = times(z, t)
    raw = denoise(z, tt)
    if kind == "v":
        return path.ode_velocity(raw, target, z, tt)
    return path.convert(raw, target, kind, z, tt)


def notify(callback: Callback | None, **state) -> None:
    if callback is not None:
        callback(**state)


#: every sampler by name, generic and method-specific (registration order is ``hdfm-bench list``'s)
SAMPLERS: Registry[type[Sampler]] = class_registry("sampler", Sampler, error=ConfigError, dataclass=True)
#: ``@register_sampler`` on a Sampler subclass adds it under its ``name``
register_sampler = SAMPLERS.register
