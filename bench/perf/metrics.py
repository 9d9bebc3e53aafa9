"""Metric throughput: FID + KID + PR and the spectral ratio on 10,000 MNIST images."""
from __future__ import annotations

import datetime as _dt
import statistics
import time

from hdfm_bench.evaluation.metrics import compute_metrics, spectral_ratio
from hdfm_bench.evaluation.metrics.features import DEFAULT_METRICS
from hdfm_bench.evaluation.metrics.fidelity import reference_features
from hdfm_bench.tasks import get_task

from .harness import machine


def metrics_benchmark(repeats: int = 3, n: int = 10_000) -> tuple[str, list[dict]]:
    """FID + KID + PR of 10,000 MNIST images (train split as the "generated" set) against the
    cached 10k test reference, domain-mnist extractor, through torch-fidelity."""
    task = get_task("mnist")
    x, _ = task.load("train")
    fake = task.to_uint8(x[:n])
    t0 = time.perf_counter()
    reference_features("mnist", "test", "domain-mnist")  # first use: classifier + reference cache
    first = time.perf_counter() - t0
    times, spec_times, result = [], [], {}
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = compute_metrics(generated=fake, reference="mnist:test", extractor="domain-mnist",
                                 metrics=DEFAULT_METRICS)
        times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        spectral_ratio(generated=fake, reference=task.to_uint8(task.load("test")[0]))
        spec_times.append(time.perf_counter() - t0)
    med, spec = statistics.median(times), statistics.median(spec_times)
    rows = [{"what": "FID+KID+PR", "seconds": med}, {"what": "spectral_ratio", "seconds": spec}]
    body = "\n".join([
        "## Metric throughput",
        "",
        f"Machine: {machine()}. Measured {_dt.date.today().isoformat()}, median of {repeats}.",
        "",
        "| what | n generated vs reference | median s |",
        "|---|---|---:|",
        f"| FID + KID + PR (torch-fidelity, domain-mnist, reference statistics cached) | {n:,} vs 10,000 test | "
        f"{med:.1f} |",
        f"| spectral ratio (ours) | {n:,} vs 10,000 test | {spec:.2f} |",
        f"| first use: domain classifier (cached or trained) + reference features | — | {first:.1f} |",
        "",
        f"FID {result.get('fid', float('nan')):.3f}, KID {result.get('kid_mean', float('nan')):.4f}, "
        f"precision {result.get('precision', float('nan')):.3f}, recall {result.get('recall', float('nan')):.3f} "
        "(MNIST train vs test: the floor of this protocol).",
        "",
        f"Goal ≤ 30 s for FID + KID + PR on 10,000 images — {'met' if med <= 30 else 'NOT met'} ({med:.1f} s).",
    ])
    return body, rows
