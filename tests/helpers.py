"""Shared fixtures: small configurations of every registered path."""
from __future__ import annotations

import numpy as np

from hdfm_bench.methods import get_path, list_paths

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



def assert_png(path, min_width: int = 300, min_height: int = 200) -> None:
    """``path`` is a PNG that decodes, has a plausible size and is not blank (more than one colour
    covering a real share of the pixels)."""
    from PIL import Image

    with Image.open(path) as img:
        assert img.format == "PNG", f"{path} is {img.format}, not PNG"
        assert img.width >= min_width and img.height >= min_height, f"{path} is only {img.size}"
        grey = np.asarray(img.convert("L"), dtype=np.float64)
    ink = (grey < 0.9 * grey.max()).mean()
    assert 0.001 < ink < 0.99, f"{path} looks blank (ink fraction {ink:.4f})"
