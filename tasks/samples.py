"""Single real images bundled with scikit-learn (no download): for galleries and visual checks."""
from __future__ import annotations

import numpy as np
from PIL import Image


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to a square, then resize (bicubic) to size × size; img (H, W[, C]) uint8."""
    h, w = img.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    crop = Image.fromarray(img[top:top + s, left:left + s])
    return np.asarray(crop.resize((size, size), Image.Resampling.BICUBIC))


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
