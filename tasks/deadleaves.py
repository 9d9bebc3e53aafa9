"""``deadleaves``: a seeded dead-leaves model, colour and multi-scale, generated on the CPU (docs/methods.md §13).

Each image is a stack of ``leaves`` opaque shapes dropped one over the other on a background colour
(Matheron's dead-leaves model). Sizes follow the power law p(r) ∝ r⁻³ on [r_min, r_max]: the
scale-invariant choice, which gives the image a power spectrum close to 1/f² like natural images
(Lee, Mumford & Huang 2001). Four classes: the leaf shape (discs or squares) × the palette (warm:
red–yellow hues, cool: cyan–blue). Structure and colour both decide the class, so the domain
classifier (``domain-deadleaves``) has to look at shapes at every scale, not only at colours.

Everything is drawn from numpy's PCG64 in float64 and rasterised by exact comparisons, so a split is
the same on every machine; the uint8 images are cached under ``<data root>/deadleaves/``.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hdfm_bench.core.hashing import short_hash
from hdfm_bench.core.io import write_bytes

from .contract import Param, Task, default_data_root
from .errors import TaskError
from .pixels import u8_to_unit
from .registry import register_task

#: (first hue, width of the hue range) of the warm and the cool palette, hue in [0, 1)
PALETTES = ((0.92, 0.25), (0.45, 0.25))
SHAPES = ("disc", "square")
CHUNK = 1024


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """HSV in [0, 1] → RGB in [0, 1], the standard hexcone formula; returns (..., 3)."""
    i = np.floor(h * 6.0)
    f = h * 6.0 - i
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    i = i.astype(np.int64) % 6
    r = np.choose(i, [v, q, p, p, t, v])
    g = np.choose(i, [t, v, v, q, p, p])
    b = np.choose(i, [p, p, t, v, v, q])
    return np.stack([r, g, b], axis=-1)


def render(labels: np.ndarray, rng: np.random.Generator, size: int, leaves: int, r_min: float,
           r_max: float) -> np.ndarray:
    """uint8 images (N, 3, size, size) of the classes ``labels`` (class = 2 · palette + shape)."""
    n = len(labels)
    shape, palette = labels % 2, labels // 2
    hue0 = np.array([p[0] for p in PALETTES])[palette]
    width = np.array([p[1] for p in PALETTES])[palette]

    def colours(k: int) -> np.ndarray:  # (n, k, 3)
        h = (hue0[:, None] + width[:, None] * rng.random((n, k))) % 1.0
        return _hsv_to_rgb(h, rng.uniform(0.25, 1.0, (n, k)), rng.uniform(0.15, 1.0, (n, k)))

    a, b = r_min ** -2.0, r_max ** -2.0
    radius = (a - rng.random((n, leaves)) * (a - b)) ** -0.5  # inverse CDF of p(r) ∝ r⁻³
    centre = rng.uniform(-0.25 * r_max, size + 0.25 * r_max, (n, leaves, 2))
    colour = colours(leaves)
    img = np.broadcast_to(colours(1)[:, 0, :, None, None], (n, 3, size, size)).copy()
    grid = np.arange(size, dtype=np.float64) + 0.5
    disc = (shape == 0)[:, None, None]
    for j in range(leaves):  # back to front: leaf j covers the leaves before it
        dy = grid[None, :, None] - centre[:, j, 0, None, None]
        dx = grid[None, None, :] - centre[:, j, 1, None, None]
        r = radius[:, j, None, None]
        inside = np.where(disc, dx * dx + dy * dy <= r * r, np.maximum(np.abs(dx), np.abs(dy)) <= r)
        img = np.where(inside[:, None], colour[:, j, :, None, None], img)
    return np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)


@register_task
class DeadLeavesTask(Task):
    """Dead leaves, (3, size, size), 4 classes (disc / square × warm / cool), power-law leaf sizes."""

    name = "deadleaves"
    summary = "seeded dead-leaves images: colour, occlusion, power-law sizes (~1/f^2 spectrum), 4 classes"
    params = {
        "size": Param(int, 32, "image side in pixels", minimum=8),
        "n_train": Param(int, 20000, "images in the train split", minimum=1),
        "n_test": Param(int, 2000, "images in the test split (the evaluation's reference)", minimum=1),
        "leaves": Param(int, 250, "leaves dropped per image", minimum=1),
        "r_min": Param(int, 1, "smallest leaf radius in pixels", minimum=1),
        "r_max": Param(int, 24, "largest leaf radius in pixels", minimum=1),
        "seed": Param(int, 0, "seed of the generator (train and test draw from disjoint streams)", minimum=0),
        "root": Param(str, "", "cache folder (default: <data root>/deadleaves)"),
    }
    num_classes = 4
    splits = ("train", "test")

    def _setup(self) -> None:
        if self.config["r_max"] < self.config["r_min"]:
            raise TaskError(f"task 'deadleaves': r_max ({self.config['r_max']}) must be >= r_min "
                            f"({self.config['r_min']})")

    _declare = _setup

    @property
    def shape(self) -> tuple[int, ...]:  # type: ignore[override]
        return (3, self.config["size"], self.config["size"])

    @property
    def protocol(self) -> dict[str, Any]:
        return {"extractor": "domain-deadleaves", "reference_split": "test", "resolution": self.config["size"]}

    def generate(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """The split drawn afresh: uint8 images (N, 3, size, size) and labels (N,)."""
        c = self.config
        n = c[f"n_{split}"]
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([c["seed"], self.splits.index(split)])))
        labels = rng.integers(0, self.num_classes, n)
        chunks = [render(labels[i:i + CHUNK], rng, c["size"], c["leaves"], float(c["r_min"]), float(c["r_max"]))
                  for i in range(0, n, CHUNK)]
        return np.concatenate(chunks), labels

    def _load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        c = {k: v for k, v in self.config.items() if k != "root"}
        folder = Path(self.config["root"]).expanduser() if self.config["root"] else default_data_root() / "deadleaves"
        path = folder / f"{split}-{short_hash(c, 12)}.npz"
        try:
            with np.load(path) as f:
                x, y = f["x"], f["y"]
        except (OSError, ValueError, KeyError):  # absent or damaged: draw it again (it is a function of c)
            x, y = self.generate(split)
            buf = io.BytesIO()
            np.savez(buf, x=x, y=y)
            write_bytes(path, buf.getvalue())
        if x.shape != (c[f"n_{split}"], *self.shape):
            raise TaskError(f"{path} holds images of shape {x.shape}, expected {(c[f'n_{split}'], *self.shape)}; "
                            "delete it to draw the split again")
        return u8_to_unit(x), torch.as_tensor(y, dtype=torch.long)
