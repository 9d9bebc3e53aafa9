"""Evaluation metrics.

``spectral_ratio`` / ``trajectory_ratio`` / ``band_edges`` / ``radial_power`` come from
:mod:`.spectral` (the project's own spectral ratio, docs/methods.md §9).
``compute_metrics`` and ``MetricError`` come from :mod:`.fidelity`; they are
imported lazily (module ``__getattr__``, PEP 562) so that importing ``hdfm_bench.evaluation.metrics`` does not
pull in the feature extractors, and works even where fidelity's dependencies are missing.
"""
from __future__ import annotations

import importlib
from typing import Any

from hdfm_bench.evaluation.metrics.spectral import band_edges, radial_power, spectral_ratio, trajectory_ratio

__all__ = [
    "spectral_ratio",
    "trajectory_ratio",
    "band_edges",
    "radial_power",
    "compute_metrics",
    "MetricError",
]

_LAZY = {"compute_metrics": ".fidelity", "MetricError": ".fidelity"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value  # cache: later look-ups skip __getattr__
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
