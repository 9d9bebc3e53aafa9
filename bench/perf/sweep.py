"""A local sweep of four tiny runs: the executor's concurrency limit and thread shares against running
the same jobs one after another (core.threads, sweeps.submit.local_slots)."""
from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hdfm_bench.core.threads import available_cores, share

from .harness import section_header

SPEC = """name = "perf-sweep"
folder = "{root}/sweep"
out_dir = "{root}/runs"
[base]
task = "digits"
backbone = "vit"
backbone_params = {{ size = "tiny", patch = 2 }}
steps = {steps}
batch_size = 64
checkpoint_every = {steps}
ema_decays = [0.99]
[grid]
seed = [0, 1, 2, 3]
[eval]
steps = [10]
n = 200
ema = [0.99]
[slurm]
cpus_per_task = 1
"""


def timed_sweep(root: Path, steps: int, parallel: int) -> float:
    """Wall time of ``hdfm-bench sweep SPEC --executor local --parallel N`` from nothing (train + evaluate)."""
    root.mkdir(parents=True)
    spec = root / "spec.toml"
    spec.write_text(SPEC.format(root=root, steps=steps))
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "hdfm_bench.cli", "sweep", str(spec), "--executor", "local",
                    "--parallel", str(parallel)], check=True, capture_output=True)
    return time.perf_counter() - t0


def sweep_benchmark(repeats: int = 1, steps: int = 300) -> tuple[str, list[dict]]:
    """Four runs (train ``steps`` + evaluate 200 images each) at the executor's default concurrency
    (the cores, one thread per job) and one at a time (every core to the one job), interleaved."""
    cores = available_cores()
    walls: dict[int, list[float]] = {cores: [], 1: []}
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(repeats):
            for parallel in walls:
                walls[parallel].append(timed_sweep(Path(tmp) / f"{parallel}-{k}", steps, parallel))
    together, alone = statistics.median(walls[cores]), statistics.median(walls[1])
    body = section_header("Local sweep: jobs side by side vs one after another",
                          f"`hdfm-bench sweep --executor local` of 4 runs (digits, ViT tiny patch 2, {steps} steps "
                          "at batch 64, then 200 images evaluated each), from an empty sweep folder, each "
                          "invocation a fresh process.", repeats)
    body += ["| local executor | jobs at once | threads per job | wall time |", "|---|---:|---:|---:|",
             f"| default (`--parallel` unset) | {cores} | {share(cores, cores)} | {together:.0f} s |",
             f"| one after another (`--parallel 1`) | 1 | {cores} | {alone:.0f} s |", "",
             f"Side by side / one after another: {together / alone:.2f} (goal ≤ 1: sharing the cores costs "
             f"nothing) — {'met' if together <= alone else 'NOT met'}."]
    return "\n".join(body), [{"parallel": p, "wall_s": statistics.median(w)} for p, w in walls.items()]
