"""FID / KID / precision-recall through torch-fidelity, with cached reference features.

``compute_metrics(generated=..., reference=..., extractor=..., metrics=("fid", "kid", "prc"))``
validates the inputs, wraps them as Datasets of uint8 tensors and calls
``torch_fidelity.calculate_metrics`` with one of the extractors of :mod:`.extractors`
(``generated`` is torch-fidelity's input1, ``reference`` its input2, matching its
precision/recall convention). Every metric of the project takes the generated set first and the
reference second, by keyword only, so a swap cannot pass unnoticed.

Reference cache: ``reference`` may be a string ``"task:split"`` (e.g. ``"mnist:test"``). The features of
that split are computed once with torch-fidelity's own feature-extraction loop and cached under
``<data root>/reference/`` keyed by a content hash of (task, task parameters, split, data hash,
extractor, extractor weights hash, n). The cached features are then fed to ``calculate_metrics`` as
a Dataset of (D,) float feature rows, which our extractors pass through unchanged — so the metric
code is torch-fidelity's, the real side costs nothing after the first call, and the result is
identical to passing the images themselves.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch_fidelity
from torch.utils.data import Dataset
from torch_fidelity.utils import create_feature_extractor, get_featuresdict_from_dataset

from hdfm_bench.core.hashing import arrays_sha256, short_hash
from hdfm_bench.core.io import write_with
from hdfm_bench.tasks import default_data_root, get_task, u8_to_unit

from .extractors import EXTRACTORS, MetricError, domain_classifier, get_extractor_info, resolve_extractor

__all__ = ["compute_metrics", "MetricError", "reference_features", "classifier_accuracy", "METRICS"]

METRICS = ("fid", "kid", "prc")


class _Rows(Dataset):
    """A Dataset over the first axis of a tensor (uint8 images or precomputed feature rows)."""

    def __init__(self, x: torch.Tensor) -> None:
        self.x = x

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.x[i]


def _check_images(x: Any, what: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise MetricError(f"{what} must be a torch.uint8 tensor (N, C, H, W), got {type(x).__name__}")
    if x.dtype != torch.uint8:
        raise MetricError(f"{what} must be torch.uint8 with values 0..255, got {x.dtype} "
                          "(convert with task.to_uint8)")
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise MetricError(f"{what} must be shaped (N, C, H, W) with C = 1 or 3, got {tuple(x.shape)}")
    if len(x) < 2:
        raise MetricError(f"{what} has {len(x)} image(s); at least 2 are needed")
    return x


def _check_size(shape: Sequence[int], info: dict[str, Any], what: str) -> None:
    want = info["input_size"]
    if want is not None and tuple(shape) != tuple(want):
        raise MetricError(f"extractor '{info['name']}' was trained on images {tuple(want)}, but {what} "
                          f"has images {tuple(shape)}")


def _tf_kwargs(res: dict[str, Any], batch_size: int) -> dict[str, Any]:
    return {"feature_extractor": res["tf_name"], "feature_extractor_weights_path": res["weights_path"],
            "cuda": torch.cuda.is_available(), "save_cpu_ram": True, "verbose": False, "cache": False,
            "batch_size": int(batch_size)}


def _parse_ref(spec: str) -> tuple[str, str]:
    task, sep, split = spec.partition(":")
    if not sep or not task or not split:
        raise MetricError(f"a reference must be 'task:split' (e.g. 'mnist:test'), got '{spec}'")
    return task, split


def _reference(task_name: str, split: str, extractor: str, n: int | None, batch_size: int,
               root: str | os.PathLike | None, weights: str | os.PathLike | None
               ) -> tuple[torch.Tensor, str, tuple[int, ...]]:
    info = get_extractor_info(extractor)
    try:
        task = get_task(task_name)
        x, _ = task.load(split)
        if not task.is_image:
            raise MetricError(f"task '{task_name}' holds vectors, not images")
        x = task.to_uint8(x)
    except ValueError as err:
        raise MetricError(str(err)) from None
    if n is not None:
        if not 2 <= n <= len(x):
            raise MetricError(f"reference n={n} must be between 2 and {len(x)} (the size of {task_name}:{split})")
        x = x[:n]
    _check_size(x.shape[1:], info, f"the reference {task_name}:{split}")
    res = resolve_extractor(extractor, weights, root)
    params = {k: v for k, v in task.config.items() if k not in ("root", "download")}
    ident = {"task": task_name, "params": params, "split": split, "n": n, "extractor": extractor,
             "extractor_hash": res["hash"], "data": arrays_sha256(x)}
    key = short_hash(ident)
    folder = (Path(root).expanduser() if root else default_data_root()) / "reference"
    path = folder / f"{task_name}-{split}-{extractor}-{key}.pt"
    if path.is_file():
        feats = torch.load(path, map_location="cpu", weights_only=True)["features"]
        return feats, key, tuple(x.shape[1:])
    kw = _tf_kwargs(res, batch_size)
    layer = info.get("layer") or ("feat" if info["task"] is not None else "2048")
    fe = create_feature_extractor(res["tf_name"], [layer], **kw)
    feats = get_featuresdict_from_dataset(_Rows(x), fe, kw["batch_size"], kw["cuda"], True, False)[layer].cpu()
    write_with(path, lambda p: torch.save({"features": feats, "meta": json.dumps(ident)}, p))
    return feats, key, tuple(x.shape[1:])


def reference_features(task_name: str, split: str, extractor: str, n: int | None = None, *,
                       with_key: bool = False, batch_size: int = 500, root: str | os.PathLike | None = None,
                       weights: str | os.PathLike | None = None):
    """Features (N, D) of the first ``n`` (default all) images of ``task:split`` under ``extractor``.

    Computed once and cached under ``<data root>/reference/`` by a content hash (the
    ``reference_hash``); ``with_key=True`` returns ``(features, reference_hash)``.
    """
    feats, key, _ = _reference(task_name, split, extractor, n, batch_size, root, weights)
    return (feats, key) if with_key else feats


def compute_metrics(*, generated: torch.Tensor, reference: torch.Tensor | str, extractor: str = "domain-mnist",
                    metrics: Sequence[str] = METRICS, kid_subset_size: int = 1000, batch_size: int = 500,
                    reference_n: int | None = None, root: str | os.PathLike | None = None,
                    weights: str | os.PathLike | None = None) -> dict[str, Any]:
    """FID / KID / precision-recall of ``generated`` against ``reference`` through torch-fidelity.

    generated: uint8 (M, C, H, W). reference: uint8 (N, C, H, W) images, or ``"task:split"`` for
    the cached reference features of that split (``reference_n`` limits it to the first n images).
    metrics: any of "fid", "kid", "prc". Returns floats ``fid``, ``kid_mean``, ``kid_std``,
    ``precision``, ``recall`` (those asked), plus ``extractor``, ``extractor_hash``, ``n_real``
    (reference), ``n_fake`` (generated) and, for a string reference, ``reference`` and
    ``reference_hash``.
    """
    real, fake = reference, generated
    if isinstance(metrics, str):
        metrics = (metrics,)
    metrics = tuple(metrics)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise MetricError(f"unknown metric(s) {', '.join(map(repr, unknown)) or '(none asked)'}; "
                          f"known: {', '.join(METRICS)}")
    info = get_extractor_info(extractor)
    fake = _check_images(fake, "generated")
    _check_size(fake.shape[1:], info, "generated")
    out_ref: dict[str, Any] = {}
    if isinstance(real, str):
        task_name, split = _parse_ref(real)
        real_feats, key, shape = _reference(task_name, split, extractor, reference_n, batch_size, root, weights)
        if tuple(fake.shape[1:]) != shape:
            raise MetricError(f"reference ({real}) and generated images differ in shape: {shape} vs "
                              f"{tuple(fake.shape[1:])}")
        real_data = real_feats
        out_ref = {"reference": real, "reference_hash": key}
    else:
        real = _check_images(real, "reference")
        if real.shape[1:] != fake.shape[1:]:
            raise MetricError(f"reference and generated images differ in shape: {tuple(real.shape[1:])} vs "
                              f"{tuple(fake.shape[1:])}")
        real_data = real
    n_real, n_fake = len(real_data), len(fake)
    if "kid" in metrics and min(n_real, n_fake) < kid_subset_size:
        raise MetricError(f"KID needs at least kid_subset_size={kid_subset_size} images per set, got "
                          f"{n_real} reference and {n_fake} generated; pass a smaller kid_subset_size "
                          f"(e.g. {min(n_real, n_fake)})")
    res = resolve_extractor(extractor, weights, root)
    kw = _tf_kwargs(res, batch_size)
    try:
        raw = torch_fidelity.calculate_metrics(input1=_Rows(fake), input2=_Rows(real_data),
                                               fid="fid" in metrics, kid="kid" in metrics,
                                               prc="prc" in metrics, kid_subset_size=int(kid_subset_size), **kw)
    except MetricError:
        raise
    except (ValueError, AssertionError, RuntimeError) as err:
        raise MetricError(f"torch-fidelity failed: {type(err).__name__}: {err}") from None
    out: dict[str, Any] = {}
    if "fid" in metrics:
        out["fid"] = float(raw["frechet_inception_distance"])
    if "kid" in metrics:
        out["kid_mean"] = float(raw["kernel_inception_distance_mean"])
        out["kid_std"] = float(raw["kernel_inception_distance_std"])
    if "prc" in metrics:
        out["precision"] = float(raw["precision"])
        out["recall"] = float(raw["recall"])
    out.update({"extractor": extractor, "extractor_hash": res["hash"], "n_real": n_real, "n_fake": n_fake})
    out.update(out_ref)
    return out


@torch.no_grad()
def classifier_accuracy(generated: torch.Tensor, labels: torch.Tensor, extractor: str = "domain-mnist",
                        batch_size: int = 1000, root: str | os.PathLike | None = None) -> float:
    """Fraction of ``generated`` (uint8) the domain classifier labels as ``labels`` (class-conditional samples)."""
    images = generated
    info = get_extractor_info(extractor)
    if info["task"] is None:
        domain = ", ".join(k for k, v in EXTRACTORS.items() if v["task"])
        raise MetricError(f"classifier_accuracy needs a domain extractor ({domain}), "
                          f"got '{extractor}'")
    images = _check_images(images, "images")
    _check_size(images.shape[1:], info, "images")
    labels = torch.as_tensor(labels).long().reshape(-1)
    if len(labels) != len(images):
        raise MetricError(f"{len(images)} images but {len(labels)} labels")
    model, _ = domain_classifier(extractor, root)
    correct = 0
    for i in range(0, len(images), batch_size):
        pred = model(u8_to_unit(images[i:i + batch_size])).argmax(1)
        correct += int((pred == labels[i:i + batch_size]).sum())
    return correct / len(images)
