"""Features of an image set, extracted batch by batch, and FID / KID / PR from them.

The images of a set are turned into features as they arrive (:class:`Features`: the extractor
runs on each batch; the images are never held together). A set is then either its feature matrix
(what KID and precision/recall need) or, when only FID is asked, its running sum and sum of outer
products (what FID's mean and covariance need: memory flat in n). The metrics are
torch-fidelity's own ``fid_statistics_to_metric``, ``kid_features_to_metric`` and
``prc_features_to_metric`` (generated = its input1, reference = its input2).
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch

from hdfm_bench.core.registry import Registry, summary_of

from .errors import MetricError
from .extractors import get_extractor_info, resolve_extractor

#: rows per chunk of the precision/recall distance computation (memory ~ PRC_CHUNK × N × 8 bytes)
PRC_CHUNK = 1000


def check_images(x: Any, what: str, minimum: int = 2) -> torch.Tensor:
    """``x`` must be a uint8 (N, C, H, W) tensor with C ∈ {1, 3} and at least ``minimum`` images."""
    if not isinstance(x, torch.Tensor):
        raise MetricError(f"{what} must be a torch.uint8 tensor (N, C, H, W), got {type(x).__name__}")
    if x.dtype != torch.uint8:
        raise MetricError(f"{what} must be torch.uint8 with values 0..255, got {x.dtype} "
                          "(convert with task.to_uint8)")
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise MetricError(f"{what} must be shaped (N, C, H, W) with C = 1 or 3, got {tuple(x.shape)}")
    if len(x) < minimum:
        raise MetricError(f"{what} has {len(x)} image(s); at least {minimum} are needed")
    return x


def check_metrics(metrics: str | Sequence[str]) -> tuple[str, ...]:
    metrics = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise MetricError(f"unknown metric(s) {', '.join(map(repr, unknown)) or '(none asked)'}; "
                          f"known: {', '.join(METRICS)}")
    return metrics


class Extractor:
    """A registered extractor, loaded once: ``features(u8 batch) → float64 (B, D)`` on the CPU."""

    def __init__(self, name: str, *, root: str | os.PathLike | None = None,
                 weights: str | os.PathLike | None = None) -> None:
        self.info = get_extractor_info(name)
        self.name = name
        res = resolve_extractor(name, weights, root)
        self.hash, self.weights_path = res["hash"], res["weights_path"]
        self.layer = self.info.get("layer") or ("feat" if self.info["task"] is not None else "2048")
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        # torch-fidelity (and the torchvision and torch._dynamo it imports: ~1.5 s) is imported where it is
        # used, not by `import hdfm_bench`: every command, job and worker process would pay for it
        from torch_fidelity.utils import create_feature_extractor

        from . import fidelity_adapters  # noqa: F401 - registers the extractors in torch-fidelity
        self.module = create_feature_extractor(res["tf_name"], [self.layer], feature_extractor_weights_path=res[
            "weights_path"], cuda=self.device.type == "cuda", verbose=False).eval()

    def check_shape(self, shape: Sequence[int], what: str) -> None:
        want = self.info["input_size"]
        if want is not None and tuple(shape) != tuple(want):
            raise MetricError(f"extractor '{self.name}' was trained on images {tuple(want)}, but {what} "
                              f"has images {tuple(shape)}")

    @torch.no_grad()
    def features(self, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        out = []
        for i in range(0, len(images), batch_size):
            part = self.module(images[i:i + batch_size].to(self.device))
            out.append(self.module.convert_features_tuple_to_dict(part)[self.layer].detach().to("cpu", torch.float64))
        return torch.cat(out) if out else torch.zeros(0, self.info["features"], dtype=torch.float64)


@dataclasses.dataclass
class Features:
    """A set's features, accumulated batch by batch: the matrix (``keep=True``), or only the running
    sums FID needs (n, Σf, Σ f fᵀ), whose memory does not grow with n."""

    keep: bool = True
    n: int = 0
    rows: list = dataclasses.field(default_factory=list)
    total: torch.Tensor | None = None
    outer: torch.Tensor | None = None

    def add(self, feats: torch.Tensor) -> None:
        feats = feats.to(torch.float64)
        self.n += len(feats)
        if self.keep:
            self.rows.append(feats)
            return
        s, o = feats.sum(0), feats.T @ feats
        self.total = s if self.total is None else self.total + s
        self.outer = o if self.outer is None else self.outer + o

    def extend(self, other: Features) -> None:
        """Append another set's features (shards merged in image order)."""
        if other.keep != self.keep:
            raise MetricError("cannot merge a feature matrix with running sums")
        if self.keep:
            self.rows += other.rows
            self.n += other.n
        elif other.n:
            self.n += other.n
            self.total = other.total if self.total is None else self.total + other.total
            self.outer = other.outer if self.outer is None else self.outer + other.outer

    @property
    def matrix(self) -> torch.Tensor:
        if not self.keep:
            raise MetricError("KID and precision/recall need the features; this set kept only FID's statistics")
        return torch.cat(self.rows) if self.rows else torch.zeros(0, 0, dtype=torch.float64)

    def statistics(self) -> dict[str, np.ndarray]:
        """{"mu", "sigma"}: the mean and the unbiased covariance (np.cov's), in float64."""
        if self.n < 2:
            raise MetricError(f"FID needs at least 2 images, got {self.n}")
        if self.keep:
            f = self.matrix.numpy()
            return {"mu": f.mean(0), "sigma": np.cov(f, rowvar=False)}
        mu = (self.total / self.n).numpy()
        sigma = (self.outer.numpy() - self.n * np.outer(mu, mu)) / (self.n - 1)
        return {"mu": mu, "sigma": sigma}

    def state(self) -> dict[str, Any]:
        """A picklable form (``torch.save`` with weights_only), for shard files."""
        if self.keep:
            return {"keep": True, "n": self.n, "matrix": self.matrix}
        return {"keep": False, "n": self.n, "total": self.total, "outer": self.outer}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Features:
        if state["keep"]:
            return cls(keep=True, n=int(state["n"]), rows=[state["matrix"]])
        return cls(keep=False, n=int(state["n"]), total=state["total"], outer=state["outer"])


@dataclasses.dataclass(frozen=True)
class Metric:
    """A feature metric: ``compute(generated, reference, **kwargs) -> {output: float}``; ``needs_features``:
    it needs both feature matrices (KID, PR), not only the statistics FID keeps."""

    compute: Callable[..., dict[str, float]]
    needs_features: bool
    outputs: tuple[str, ...]
    label: str

    @property
    def summary(self) -> str:
        return summary_of(self.compute)


#: every feature metric by name (torch-fidelity's names: fid, kid, prc)
METRICS: Registry[Metric] = Registry(
    "metric", error=MetricError,
    describe=lambda name, m: {"summary": m.summary, "outputs": list(m.outputs), "needs_features": m.needs_features})
#: the metrics an evaluation measures unless asked otherwise (part of every stored protocol)
DEFAULT_METRICS = ("fid", "kid", "prc")


def register_metric(name: str, *, outputs: Sequence[str], needs_features: bool = True,
                    label: str | None = None) -> Callable[[Callable[..., dict[str, float]]], Metric]:
    """Decorator: register ``compute(generated, reference, **kwargs) -> {output: float}`` as metric ``name``."""
    return lambda compute: METRICS.register(name, Metric(compute, needs_features, tuple(outputs), label or name))


@register_metric("fid", outputs=("fid",), needs_features=False, label="FID")
def _fid(generated: Features, reference, **_: Any) -> dict[str, float]:
    """Fréchet distance between the feature Gaussians (torch-fidelity's fid_statistics_to_metric)."""
    from torch_fidelity.metric_fid import fid_statistics_to_metric

    stats, ref = generated.statistics(), reference.statistics()
    if stats["mu"].shape != ref["mu"].shape:
        raise MetricError(f"generated features have {stats['mu'].shape[0]} dimensions but the reference "
                          f"{reference.name} has {ref['mu'].shape[0]}: another extractor?")
    return {"fid": float(fid_statistics_to_metric(stats, ref, False)["frechet_inception_distance"])}


@register_metric("kid", outputs=("kid_mean", "kid_std"), label="KID")
def _kid(generated: Features, reference, kid_subset_size: int = 1000, **_: Any) -> dict[str, float]:
    """Kernel inception distance over random subsets (torch-fidelity's kid_features_to_metric)."""
    from torch_fidelity.metric_kid import kid_features_to_metric

    gen = generated.matrix
    n = min(len(gen), len(reference.features))
    if n < kid_subset_size:
        raise MetricError(f"KID needs at least kid_subset_size={kid_subset_size} images per set, got "
                          f"{len(gen)} generated and {len(reference.features)} reference; pass a smaller "
                          f"kid_subset_size (e.g. {n})")
    raw = kid_features_to_metric(gen, reference.features, kid_subset_size=int(kid_subset_size), verbose=False)
    return {"kid_mean": float(raw["kernel_inception_distance_mean"]),
            "kid_std": float(raw["kernel_inception_distance_std"])}


@register_metric("prc", outputs=("precision", "recall"), label="precision/recall")
def _prc(generated: Features, reference, **_: Any) -> dict[str, float]:
    """Improved precision and recall, k-NN manifolds (torch-fidelity's prc_features_to_metric)."""
    from torch_fidelity.metric_prc import prc_features_to_metric

    # torch-fidelity's chunked k-NN, in row chunks of PRC_CHUNK: its default (10,000) builds 10k × 10k
    # float64 distance blocks and their temporaries (14 GB, 140 s for a 10k reference on 2 cores)
    raw = prc_features_to_metric(generated.matrix, reference.features, save_cpu_ram=True, prc_batch_size=PRC_CHUNK,
                                 verbose=False)
    return {"precision": float(raw["precision"]), "recall": float(raw["recall"])}


def metrics_from_features(generated: Features, reference, metrics: Iterable[str] = DEFAULT_METRICS,
                          kid_subset_size: int = 1000) -> dict[str, float]:
    """FID / KID / PR (any registered metric, in registration order) of a generated feature set against a
    reference (``reference.Reference``: its ``features`` matrix or None, its ``statistics()``, its ``name``).
    Each metric's ``compute`` takes the options it uses (``kid_subset_size``) and ignores the rest."""
    metrics = check_metrics(tuple(metrics))
    needs_features = [m for m in metrics if METRICS[m].needs_features]
    if needs_features and reference.features is None:
        raise MetricError(f"{' and '.join(METRICS[m].label for m in needs_features)} "
                          f"need the reference's features, but {reference.name} holds only statistics "
                          "(mu, sigma); ask for FID alone (--metrics fid) or use a reference with features")
    out: dict[str, float] = {}
    for name in (m for m in METRICS if m in metrics):
        out.update(METRICS[name].compute(generated, reference, kid_subset_size=kid_subset_size))
    return out


__all__ = ["METRICS", "DEFAULT_METRICS", "Metric", "register_metric", "check_images", "check_metrics", "Extractor",
           "Features", "metrics_from_features"]
