"""CIFAR-10: 60,000 colour images 32×32, 10 classes; train 50,000 / test 10,000.

Read with ``torchvision.datasets.CIFAR10(root, train=..., download=False)`` from a folder the
user provides (``root``, required; it must hold ``cifar-10-batches-py``). Nothing is downloaded.
Pixels map to [-1, 1] as u / 127.5 − 1.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from hdfm_bench.core.messages import one_line

from .contract import Param, Task
from .errors import TaskError
from .pixels import u8_to_unit
from .registry import register_task


@register_task
class CIFAR10Task(Task):
    """CIFAR-10 (3, 32, 32), 10 classes, from torchvision's files under a given root."""

    name = "cifar10"
    summary = "CIFAR-10 32×32 colour images from a user-given torchvision root (no download)"
    params = {"root": Param(Path, None, "folder holding torchvision's cifar-10-batches-py", required=True)}
    shape = (3, 32, 32)
    num_classes = 10
    splits = ("train", "test")

    def _setup(self) -> None:
        self.root = Path(self.config["root"])
        if not self.root.is_dir():
            raise TaskError(f"cifar10: data root {self.root} does not exist or is not a folder")

    @property
    def protocol(self) -> dict[str, Any]:
        return {"extractor": "inception-offline", "reference_split": "train", "resolution": 32}

    def _load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        from torchvision.datasets import CIFAR10

        try:
            ds = CIFAR10(str(self.root), train=(split == "train"), download=False)
        except Exception as err:
            raise TaskError(f"cifar10: cannot read CIFAR-10 under {self.root} "
                            f"(expected {self.root / 'cifar-10-batches-py'}): {one_line(err)}") from None
        x = np.ascontiguousarray(np.asarray(ds.data, dtype=np.uint8).transpose(0, 3, 1, 2))
        return u8_to_unit(x), torch.as_tensor(np.asarray(ds.targets), dtype=torch.long)
