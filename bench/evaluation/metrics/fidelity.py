"""FID / KID / precision-recall of in-memory image sets, and class accuracy of generated images.

The one path every metric takes: features (:mod:`.features`, batch by batch) against a reference
(:mod:`.reference`: a task split, images, or a statistics file), through torch-fidelity's metric
functions. Every metric of the project takes the generated set first and the reference second, by
keyword only, so a swap cannot pass unnoticed.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch

from hdfm_bench.tasks import u8_to_unit

from .errors import MetricError
from .extractors import EXTRACTORS, domain_classifier, get_extractor_info
from .features import DEFAULT_METRICS, Extractor, Features, check_images, check_metrics, metrics_from_features
from .reference import Reference

__all__ = ["MetricError", "compute_metrics", "classifier_accuracy", "Accuracy", "reference_features"]


def compute_metrics(*, generated: torch.Tensor, reference: torch.Tensor | str, extractor: str = "domain-mnist",
                    metrics: Sequence[str] = DEFAULT_METRICS, kid_subset_size: int = 1000, batch_size: int = 500,
                    reference_n: int | None = None, root: str | os.PathLike | None = None,
                    weights: str | os.PathLike | None = None) -> dict[str, Any]:
    """FID / KID / precision-recall of in-memory ``generated`` images against ``reference``.

    generated: uint8 (M, C, H, W). reference: uint8 (N, C, H, W) images, ``"task:split"`` (cached
    features; ``reference_n`` keeps the first n images) or a statistics file ``*.npz``. metrics:
    any of "fid", "kid", "prc". Returns floats ``fid``, ``kid_mean``, ``kid_std``, ``precision``,
    ``recall`` (those asked), plus ``extractor``, ``extractor_hash``, ``n_real`` (reference),
    ``n_fake`` (generated), ``reference`` and ``reference_hash``.
    """
    metrics = check_metrics(metrics)
    ext = Extractor(extractor, root=root, weights=weights)
    fake = check_images(generated, "generated")
    ext.check_shape(fake.shape[1:], "generated")
    if isinstance(reference, torch.Tensor):
        real = check_images(reference, "reference")
        if real.shape[1:] != fake.shape[1:]:
            raise MetricError(f"reference and generated images differ in shape: {tuple(real.shape[1:])} vs "
                              f"{tuple(fake.shape[1:])}")
        ref = Reference.from_images(real, ext, batch_size=batch_size)
    else:
        ref = Reference.load(reference, ext, n=reference_n, batch_size=batch_size, root=root)
        ref.check_images(tuple(fake.shape[1:]))
    feats = Features(keep=metrics != ("fid",))
    feats.add(ext.features(fake, batch_size))
    out: dict[str, Any] = metrics_from_features(feats, ref, metrics, kid_subset_size)
    out.update({"extractor": extractor, "extractor_hash": ext.hash, "n_real": ref.n, "n_fake": len(fake),
                "reference": ref.name, "reference_hash": ref.hash})
    return out


def reference_features(task_name: str, split: str, extractor: str, n: int | None = None, *,
                       with_key: bool = False, batch_size: int = 500, root: str | os.PathLike | None = None,
                       weights: str | os.PathLike | None = None):
    """Features (N, D) of the first ``n`` (default all) images of ``task:split`` under ``extractor``.

    Computed once and cached under ``<data root>/reference/`` by a content hash (the
    ``reference_hash``); ``with_key=True`` returns ``(features, reference_hash)``.
    """
    ref = Reference.load(f"{task_name}:{split}", Extractor(extractor, root=root, weights=weights), n=n,
                         batch_size=batch_size, root=root)
    return (ref.features, ref.hash) if with_key else ref.features


@torch.no_grad()
def classifier_accuracy(generated: torch.Tensor, labels: torch.Tensor, extractor: str = "domain-mnist",
                        batch_size: int = 1000) -> float:
    """Fraction of ``generated`` (uint8) the domain classifier labels as ``labels`` (class-conditional samples)."""
    correct, total = Accuracy(extractor).add(generated, labels, batch_size), len(generated)
    return correct / total


class Accuracy:
    """Counts the generated images a domain classifier assigns to their class, batch by batch."""

    def __init__(self, extractor: str) -> None:
        info = get_extractor_info(extractor)
        if info["task"] is None:
            domain = ", ".join(k for k, v in EXTRACTORS.items() if v["task"])
            raise MetricError(f"class accuracy needs a domain extractor ({domain}), got '{extractor}'")
        self.info = info
        self.model, _ = domain_classifier(extractor)
        self.correct = self.total = 0

    @torch.no_grad()
    def add(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000) -> int:
        images = check_images(images, "images", minimum=1)
        want = self.info["input_size"]
        if tuple(images.shape[1:]) != tuple(want):
            raise MetricError(f"extractor '{self.info['name']}' was trained on images {tuple(want)}, but images "
                              f"has images {tuple(images.shape[1:])}")
        labels = torch.as_tensor(labels).long().reshape(-1)
        if len(labels) != len(images):
            raise MetricError(f"{len(images)} images but {len(labels)} labels")
        correct = 0
        for i in range(0, len(images), batch_size):
            pred = self.model(u8_to_unit(images[i:i + batch_size])).argmax(1)
            correct += int((pred == labels[i:i + batch_size]).sum())
        self.correct += correct
        self.total += len(images)
        return correct
