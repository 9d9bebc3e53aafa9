"""The path gallery: one digit and one colour photo corrupted by every path at several t."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torchvision.utils import make_grid

from hdfm_bench.core.io import check_output_file
from hdfm_bench.evaluation import plots
from hdfm_bench.methods import get_path, list_paths
from hdfm_bench.tasks import colour_image, digit_image

TIMES = (0.0, 0.25, 0.5, 0.75, 1.0)


def corrupt_series(name: str, image: np.ndarray, times: Sequence[float], seed: int | None = 0) -> np.ndarray:
    """``image`` (1, C, H, W) corrupted by path ``name`` (defaults) at each t with one noise
    draw; ``seed=None`` gives the noise-free signal part A_t x."""
    path = get_path(name)
    x = np.repeat(image.astype(np.float64), len(times), axis=0)
    eps = np.zeros_like(image, dtype=np.float64) if seed is None else \
        np.random.default_rng(seed).standard_normal(image.shape)
    return path.corrupt(x, np.repeat(eps, len(times), axis=0), np.asarray(times, dtype=np.float64))


def make_gallery(out: str | Path = "results/paths.png", times: Sequence[float] = TIMES,
                 seed: int = 0) -> Path:
    """Write a grid: for each path a row of z_t and a row of its noise-free part A_t x,
    columns = t (0 = source, 1 = data); a digit on the left, a colour photo on the right."""
    if not times or any(not 0 <= t <= 1 for t in times):
        raise ValueError(f"gallery times must lie in [0, 1]; got {list(times)}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"gallery --seed must be an integer >= 0, got {seed!r}")
    check_output_file(out, "--out", (".png",))
    plt, _ = plots.pyplot()
    images = {"digit (sklearn, 8x8 -> 32x32)": digit_image(0, 32),
              "photo (sklearn china.jpg, 64x64)": colour_image("china.jpg", 64)}
    rows = [(p, noisy) for p in list_paths() for noisy in (True, False)]
    fig, axes = plt.subplots(len(rows), len(images), figsize=(2.9 * len(times), 1.45 * len(rows)),
                             squeeze=False)
    for col, (title, image) in enumerate(images.items()):
        axes[0, col].set_title(title, fontsize=9)
        for ax, (name, noisy) in zip(axes[:, col], rows):
            series = corrupt_series(name, image, times, seed if noisy else None)
            img = torch.from_numpy(np.clip((series + 1) / 2, 0, 1)).float()
            if img.shape[1] == 1:
                img = img.expand(-1, 3, -1, -1)
            grid = make_grid(img, nrow=len(times), padding=2, pad_value=1.0)
            ax.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
            width = img.shape[-1] + 2
            ax.set_xticks([2 + width * i + img.shape[-1] / 2 for i in range(len(times))])
            ax.set_xticklabels([f"t={t:g}" for t in times], fontsize=7)
            ax.set_yticks([])
            if col == 0:
                ax.set_ylabel(f"{name}\n{'z_t' if noisy else 'A_t x (eps=0)'}", fontsize=8,
                              rotation=0, ha="right", va="center")
    fig.suptitle("hdfm-bench corruption paths at their defaults: t = 0 source, t = 1 data "
                 f"(one noise draw, seed {seed})", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.985))
    return plots.save_figure(fig, out, dpi=100)
