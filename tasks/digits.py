"""scikit-learn's bundled handwritten digits (``sklearn.datasets.load_digits``; no download).

1797 grey images 8×8 with values 0..16, 10 classes, mapped to [-1, 1] by v / 16 · 2 − 1.
A fixed stratified split (``train_test_split(test_size=0.2, stratify=labels, random_state=0)``)
gives train ≈ 80 % (1437) and test ≈ 20 % (360), every class in both.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .contract import Param, Task
from .registry import register_task


@register_task
class DigitsTask(Task):
    """8×8 digits from scikit-learn, (1, 8, 8), 10 classes, stratified 80/20 split."""

    name = "digits"
    summary = "scikit-learn's 1797 8×8 handwritten digits (bundled, no download)"
    params = {"split_seed": Param(int, 0, "random_state of the stratified train/test split", minimum=0)}
    shape = (1, 8, 8)
    num_classes = 10
    splits = ("train", "test")
    test_fraction = 0.2

    @property
    def protocol(self) -> dict[str, Any]:
        return {"extractor": "domain-digits", "reference_split": "train", "resolution": 8}

    def indices(self) -> dict[str, np.ndarray]:
        """Indices into ``load_digits()`` of each split (sorted)."""
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        y = load_digits().target
        tr, te = train_test_split(np.arange(len(y)), test_size=self.test_fraction, stratify=y,
                                  random_state=self.config["split_seed"])
        return {"train": np.sort(tr), "test": np.sort(te)}

    def _load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        from sklearn.datasets import load_digits

        d = load_digits()
        idx = self.indices()[split]
        x = d.images[idx].astype(np.float32) / 16.0 * 2.0 - 1.0
        return torch.as_tensor(x[:, None]), torch.as_tensor(d.target[idx], dtype=torch.long)
