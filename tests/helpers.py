"""Shared fixtures: small configurations of every registered path."""
from __future__ import annotations

import numpy as np

from methods import get_path, list_paths

# Small but faithful parameters so tests run in milliseconds.
SMALL = {"ihdm": {"K": 10, "sigma_blur_max": 4.0}, "cold_blur": {"T": 6}}
GAUSSIAN = [n for n in list_paths() if get_path(n, **SMALL.get(n, {})).gaussian]


def make_path(name: str, **extra):
    return get_path(name, **{**SMALL.get(name, {}), **extra})


def data(shape, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, shape).astype(dtype)
    eps = rng.standard_normal(shape).astype(dtype)
    return x, eps


SHAPES = [(3, 2, 8, 6), (3, 16)]  # images (B, C, H, W), rectangular; 1-D signals (B, D)

