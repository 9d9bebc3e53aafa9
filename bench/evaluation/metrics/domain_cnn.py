"""The domain classifier behind the ``domain-*`` extractors: its network, training recipe and trainer.

A small CNN (2 conv + FC(128) + linear head; RGB input for colour tasks) trained on a task's train
split; its 128-d penultimate activations, rescaled to unit RMS, are the features of FID / KID / PR
on small tasks. The shipped weights and their look-up live in :mod:`.extractors`.
"""
from __future__ import annotations

import time
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from hdfm_bench.tasks import get_task, u8_to_unit


class DomainCNN(nn.Module):
    """conv(16) → pool → conv(32) → pool → FC(128) → linear head; ``features`` = the FC(128) ReLU."""

    ARCH = "DomainCNN-v1: conv3x3(C,16)-relu-maxpool2-conv3x3(16,32)-relu-maxpool2-fc(128)-relu-fc(classes)"

    def __init__(self, size: int, num_classes: int = 10, channels: int = 1) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
        s = size // 4
        self.fc = nn.Sequential(nn.Linear(32 * s * s, 128), nn.ReLU())
        self.head = nn.Linear(128, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


RECIPES: dict[str, dict[str, Any]] = {
    "mnist": {"epochs": 2, "batch_size": 128, "lr": 2e-3, "optimizer": "adam", "seed": 0,
              "features": "unit-rms"},
    "digits": {"epochs": 40, "batch_size": 64, "lr": 2e-3, "optimizer": "adam", "seed": 0,
              "features": "unit-rms"},
    "deadleaves": {"epochs": 4, "batch_size": 128, "lr": 2e-3, "optimizer": "adam", "seed": 0,
                   "features": "unit-rms"},
}


def network(info: dict[str, Any]) -> DomainCNN:
    """An untrained DomainCNN shaped for the extractor ``info`` (channels, side, classes)."""
    channels, size = info["input_size"][0], info["input_size"][-1]
    return DomainCNN(size, num_classes=info.get("classes", 10), channels=channels)


def _task_uint8(task_name: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    task = get_task(task_name)
    x, y = task.load(split)
    return task.to_uint8(x), y


def train_domain_cnn(task_name: str, info: dict[str, Any], recipe: dict[str, Any]) -> tuple[DomainCNN, float, float]:
    """Train the DomainCNN of extractor ``info`` on ``task_name``'s train split with ``recipe``; (model, test
    accuracy, seconds). Seeded: it repeats exactly on one machine."""
    x, y = _task_uint8(task_name, "train")
    xt, yt = _task_uint8(task_name, "test")
    torch.manual_seed(recipe["seed"])
    gen = torch.Generator().manual_seed(recipe["seed"])
    model = network(info)
    opt = torch.optim.Adam(model.parameters(), lr=recipe["lr"])
    steps = recipe["epochs"] * ((len(x) + recipe["batch_size"] - 1) // recipe["batch_size"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe["lr"], total_steps=steps)
    t0 = time.perf_counter()
    model.train()
    for _ in range(recipe["epochs"]):
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), recipe["batch_size"]):
            idx = perm[i:i + recipe["batch_size"]]
            loss = F.cross_entropy(model(u8_to_unit(x[idx])), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    seconds = time.perf_counter() - t0
    model.eval()
    _normalise_features(model, x)
    return model, _accuracy(model, xt, yt), seconds


@torch.no_grad()
def _normalise_features(model: DomainCNN, x_u8: torch.Tensor, batch_size: int = 2000) -> None:
    """Rescale the FC(128) layer so that the train features have E||f||²/128 = 1 (and undo it in
    the head, leaving the logits unchanged: ReLU is positively homogeneous). This puts the
    features on a scale where torch-fidelity's KID polynomial kernel (x·y/d + 1)³ is well behaved."""
    sq = 0.0
    for i in range(0, len(x_u8), batch_size):
        sq += float(model.features(u8_to_unit(x_u8[i:i + batch_size])).double().pow(2).sum())
    d = model.head.in_features
    s = (d * len(x_u8) / max(sq, 1e-12)) ** 0.5
    model.fc[0].weight.mul_(s)
    model.fc[0].bias.mul_(s)
    model.head.weight.div_(s)


@torch.no_grad()
def _accuracy(model: DomainCNN, x_u8: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(x_u8), batch_size):
        correct += int((model(u8_to_unit(x_u8[i:i + batch_size])).argmax(1) == y[i:i + batch_size]).sum())
    return correct / max(1, len(x_u8))


__all__ = ["DomainCNN", "RECIPES", "network", "train_domain_cnn"]
