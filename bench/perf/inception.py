"""Inception throughput: images per second through the standard FID extractor on this machine."""
from __future__ import annotations

import datetime as _dt
import statistics
import time
import warnings

import torch

from hdfm_bench.tasks import get_task

from .harness import machine


def inception_benchmark(repeats: int = 3, n: int = 64, batch: int = 32) -> tuple[str, list[dict]]:
    """Features of n MNIST test images (28×28 grey → 299×299 RGB, TF1 bilinear) through the
    inception-offline TorchScript InceptionV3, batch ``batch``; median seconds over ``repeats``."""
    from hdfm_bench.evaluation.metrics.features import Extractor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is deprecated in torch 2.14
        ext = Extractor("inception-offline")
    task = get_task("mnist")
    images = task.to_uint8(task.load("test")[0][:n])
    ext.features(images[:batch], batch)  # warm-up (first-call allocations)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        ext.features(images, batch)
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    ips = n / med
    device = torch.cuda.get_device_name() if ext.device.type == "cuda" else machine()
    body = "\n".join([
        "## Inception throughput (standard FID extractor)",
        "",
        f"Device: {device}. Measured {_dt.date.today().isoformat()}, median of {repeats} passes over {n} MNIST "
        f"test images in batches of {batch}.",
        "",
        "| extractor | input → Inception input | images/s | s per 1,000 images | FID-50K feature pass |",
        "|---|---|---:|---:|---:|",
        f"| inception-offline (TorchScript InceptionV3, 2048-d pool) | 1×28×28 uint8 → 3×299×299, TF1 bilinear | "
        f"{ips:.1f} | {1000 / ips:.0f} | {50_000 / ips / 3600:.1f} h |",
        "",
        "The generated images' features are extracted as they are sampled; the reference side is computed "
        "once per (split, extractor) and cached, or read from a statistics file.",
    ])
    return body, [{"images_per_s": ips, "seconds": med}]


__all__ = ["inception_benchmark"]
