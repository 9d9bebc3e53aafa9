"""The toy experiment of JiT (§3.7): a 2-D distribution hidden in a D-dimensional space.

A 2-D sample x2 is embedded as x = P x2 with a FIXED random column-orthogonal matrix P (D×2,
PᵀP = I), the Q factor of the QR decomposition of a Gaussian D×2 matrix drawn with
``projection_seed`` (signs fixed so that R has a positive diagonal). The 2-D distributions are
scaled so that ‖x2‖ stays about ≤ 1; as every row of P has norm ≤ 1, every coordinate of x
then lies roughly in [-1, 1]. The data are synthetic (no files). They are unconditional:
``num_classes`` is 0 and the labels are zeros (the eight Gaussian mode ids are not exposed).

Evaluation compares :meth:`ToyTask.project` of generated samples (Pᵀx, back in 2-D) with
:meth:`ToyTask.sample_2d` by a sliced Wasserstein distance.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .contract import Param, Task
from .registry import register_task

DISTS = ("eight_gaussians", "two_moons", "spiral")
_SPLIT_STREAM = {"train": 1, "test": 2}


def _eight_gaussians(rng: np.random.Generator, n: int) -> np.ndarray:
    """Eight Gaussians (std 0.05) centred on a circle of radius 0.8."""
    k = rng.integers(0, 8, n)
    angle = 2 * np.pi * k / 8
    centres = 0.8 * np.stack([np.cos(angle), np.sin(angle)], 1)
    return centres + 0.05 * rng.standard_normal((n, 2))


def _two_moons(rng: np.random.Generator, n: int) -> np.ndarray:
    """Two interleaved half circles (noise 0.05), centred and scaled to about [-0.95, 0.95]×[-0.5, 0.5]."""
    upper = rng.random(n) < 0.5
    theta = np.pi * rng.random(n)
    x = np.where(upper, np.cos(theta), 1.0 - np.cos(theta))
    y = np.where(upper, np.sin(theta), 0.5 - np.sin(theta))
    pts = np.stack([x - 0.5, y - 0.25], 1) / 1.6
    return pts + 0.05 * rng.standard_normal((n, 2))


def _spiral(rng: np.random.Generator, n: int) -> np.ndarray:
    """A two-turn Archimedean spiral of radius ≤ 0.9 (noise 0.02)."""
    s = np.sqrt(rng.random(n))  # uniform along the area swept, more points outside
    r = 0.05 + 0.85 * s
    theta = 4 * np.pi * s
    pts = np.stack([r * np.cos(theta), r * np.sin(theta)], 1)
    return pts + 0.02 * rng.standard_normal((n, 2))


_SAMPLERS = {"eight_gaussians": _eight_gaussians, "two_moons": _two_moons, "spiral": _spiral}


def projection_matrix(dim: int, seed: int) -> np.ndarray:
    """The column-orthogonal D×2 matrix P (float64): Q of the QR of a Gaussian matrix, sign-fixed."""
    g = np.random.default_rng(seed).standard_normal((dim, 2))
    q, r = np.linalg.qr(g)
    return q * np.sign(np.diag(r))[None, :]


@register_task
class ToyTask(Task):
    """JiT's toy task: ``dist`` (2-D) embedded in ``dim`` dimensions by a fixed orthogonal P."""

    name = "toy"
    summary = "2-D toy distributions embedded in D dimensions by a fixed column-orthogonal matrix (JiT §3.7)"
    params = {
        "dist": Param(str, "eight_gaussians", "the 2-D distribution", choices=DISTS),
        "dim": Param(int, 16, "the ambient dimension D", minimum=2),
        "projection_seed": Param(int, 0, "seed of the Gaussian matrix whose QR gives P", minimum=0),
        "n_train": Param(int, 10000, "number of training points", minimum=1),
        "n_test": Param(int, 2000, "number of test points", minimum=1),
        "seed": Param(int, 0, "data seed (each split draws from its own stream)", minimum=0),
    }
    num_classes = 0
    splits = ("train", "test")

    def _setup(self) -> None:
        self.P64 = projection_matrix(self.config["dim"], self.config["projection_seed"])
        #: the D×2 embedding matrix, float32 (PᵀP = I)
        self.P = torch.as_tensor(self.P64, dtype=torch.float32)

    @property
    def shape(self) -> tuple[int, ...]:  # type: ignore[override]
        return (self.config["dim"],)

    @property
    def protocol(self) -> dict[str, Any]:
        return {"extractor": "sliced-wasserstein", "reference_split": "train", "resolution": None}

    def sample_2d(self, n: int, seed: int = 0) -> torch.Tensor:
        """n points of the 2-D distribution (float32, (n, 2)), deterministic in seed."""
        rng = np.random.default_rng(seed)
        return torch.as_tensor(_SAMPLERS[self.config["dist"]](rng, int(n)), dtype=torch.float32)

    def embed(self, x2: torch.Tensor) -> torch.Tensor:
        """(N, 2) -> (N, D): x = P x2 for each row."""
        return torch.as_tensor(x2, dtype=torch.float32) @ self.P.T

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """(N, D) -> (N, 2): Pᵀ x for each row (the inverse of :meth:`embed` on its range)."""
        return torch.as_tensor(x, dtype=torch.float32) @ self.P

    def split_seed(self, split: str) -> list[int]:
        """The seed sequence of a split's data stream."""
        return [self.config["seed"], _SPLIT_STREAM[split]]

    def _load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.config[f"n_{split}"]
        rng = np.random.default_rng(self.split_seed(split))
        x2 = _SAMPLERS[self.config["dist"]](rng, n)
        x = torch.as_tensor(x2 @ self.P64.T, dtype=torch.float32)
        return x, torch.zeros(n, dtype=torch.long)
