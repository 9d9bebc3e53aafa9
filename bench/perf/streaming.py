"""Streaming training memory: the peak resident memory of a short training on an image folder of 5,000
and of 50,000 synthetic JPEGs, each in a fresh child process; the in-memory alternative for scale."""
from __future__ import annotations

import datetime as _dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .harness import machine

_CHILD = """
import json, resource, sys, time
from hdfm_bench.core.config import RunConfig
from hdfm_bench.training import train
root, out = sys.argv[1], sys.argv[2]
cfg = RunConfig.from_mapping(dict(task="imagefolder", task_params={"root": root, "resolution": 32}, path="noise_fm",
    backbone="vit", backbone_params={"size": "tiny", "patch": 8, "width": 32, "depth": 1, "heads": 2,
    "bottleneck": 16}, steps=30, batch_size=32, ema_decays=[0.9], workers=2, checkpoint_every=30, out_dir=out))
t0 = time.perf_counter()
train(cfg, progress=False)
print(json.dumps({"trainer_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "worker_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
                  "seconds": time.perf_counter() - t0}))
"""


def training_peak_rss(root: str | Path, out: str | Path) -> dict:
    """Peak RSS (MiB) of the trainer process and of its largest DataLoader worker during 30 steps of a tiny
    ViT on the image folder ``root`` (32×32, batch 32, 2 workers), in a fresh child process."""
    run = subprocess.run([sys.executable, "-c", _CHILD, str(root), str(out)], capture_output=True, text=True)
    if run.returncode:
        raise RuntimeError(f"the training child failed: {(run.stderr.strip().splitlines() or ['?'])[-1]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def streaming_benchmark(repeats: int = 1, sizes: tuple[int, ...] = (5_000, 50_000)) -> tuple[str, list[dict]]:
    """``training_peak_rss`` on synthetic folders of each size (48×48 JPEGs, 10 classes)."""
    from hdfm_bench.tasks.samples import synthetic_folder

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            t0 = time.perf_counter()
            root = synthetic_folder(Path(tmp) / f"jpegs{n}", n, size=48, classes=10, seed=n)
            made = time.perf_counter() - t0
            best = min((training_peak_rss(root, Path(tmp) / f"runs{n}-{k}") for k in range(repeats)),
                       key=lambda r: r["trainer_mib"])
            rows.append({"n": n, "make_s": made, **best})
    small, large = rows[0], rows[-1]
    body = ["## Streaming training memory", "",
            f"Machine: {machine()}. Measured {_dt.date.today().isoformat()}. 30 steps of a tiny ViT on an "
            "`imagefolder` of synthetic 48×48 JPEGs (10 class folders) at 32×32, batch 32, 2 DataLoader workers; "
            "peak resident memory of the trainer process and of its largest worker, one fresh child process per "
            "size.", "",
            "| images | trainer peak | largest worker peak | training wall time |", "|---:|---:|---:|---:|"]
    body += [f"| {r['n']:,} | {r['trainer_mib']:,.0f} MiB | {r['worker_mib']:,.0f} MiB | {r['seconds']:.1f} s |"
             for r in rows]
    in_memory = (large["n"] - small["n"]) * 3 * 32 * 32 * 4 / 2**20
    body += ["", f"From {small['n']:,} to {large['n']:,} images the trainer's peak grows by "
             f"{100 * (large['trainer_mib'] / small['trainer_mib'] - 1):+.1f} % and a worker's by "
             f"{100 * (large['worker_mib'] / small['worker_mib'] - 1):+.1f} % (the file list); holding the images "
             f"in memory as float32 would add {in_memory:,.0f} MiB."]
    return "\n".join(body), rows


__all__ = ["training_peak_rss", "streaming_benchmark"]
