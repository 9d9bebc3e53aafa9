"""Sample images: single real images bundled with scikit-learn (no download) for galleries and
visual checks, and synthetic image folders for the streaming tests and benchmarks."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .datasets import square


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to a square, then resize (bicubic) to size × size; img (H, W[, C]) uint8."""
    return np.asarray(square(Image.fromarray(img), size))


def synthetic_folder(root: str | Path, n: int, *, size: int = 48, classes: int = 10, seed: int = 0,
                     fmt: str = "JPEG", split: str = "") -> Path:
    """Write ``n`` smooth random RGB images (a bicubic-upsampled 4×4 colour field, size × size) as
    ``root/[split/]c<k>/<i>.jpg`` in ``classes`` class folders (none when classes = 0); returns root.

    Stand-ins for a photo folder in tests and benchmarks: they compress like photos, not like noise."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    suffix = {"JPEG": ".jpg", "PNG": ".png"}[fmt]
    for i in range(n):
        folder = root / split / (f"c{i % classes:03d}" if classes else "")
        if i < max(classes, 1):
            folder.mkdir(parents=True, exist_ok=True)
        field = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        Image.fromarray(field).resize((size, size), Image.Resampling.BICUBIC).save(folder / f"{i:06d}{suffix}", fmt)
    return root


def digit_image(index: int = 0, size: int = 32) -> np.ndarray:
    """scikit-learn's 8×8 digit ``index`` upsampled to size × size; shape (1, 1, size, size) in [-1, 1]."""
    from sklearn.datasets import load_digits

    images = load_digits().images
    if not 0 <= index < len(images):
        raise ValueError(f"digit index {index} out of range [0, {len(images)})")
    u8 = np.round(images[index] / 16.0 * 255).astype(np.uint8)
    return (_resize(u8, size).astype(np.float32) / 127.5 - 1.0)[None, None]


def colour_image(name: str = "china.jpg", size: int = 64) -> np.ndarray:
    """A scikit-learn sample photo (china.jpg or flower.jpg); shape (1, 3, size, size) in [-1, 1]."""
    from sklearn.datasets import load_sample_image

    if name not in ("china.jpg", "flower.jpg"):
        raise ValueError(f"unknown sample image '{name}'; known: china.jpg, flower.jpg")
    img = load_sample_image(name)
    return (_resize(img, size).astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]
