"""The default suite's wall time and peak memory, run as a child process from an empty run folder."""
from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import tempfile
import time

from .harness import section_header


def suite_benchmark(repeats: int = 1, quick: bool = False) -> tuple[str, list[dict]]:
    """``hdfm-bench run`` from nothing (fresh run folder) in a child process: wall time and peak RSS."""
    walls, peaks = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "hdfm_bench.cli", "run", "--results", f"{tmp}/results", "--out-dir",
                   f"{tmp}/runs"]
            t0 = time.perf_counter()
            subprocess.run(cmd + (["--quick"] if quick else []), check=True, capture_output=True)
            walls.append(time.perf_counter() - t0)
            peaks.append(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)  # KiB → MiB
    wall, peak = statistics.median(walls), max(peaks)
    body = section_header("Default suite: wall time and peak memory",
                   f"`hdfm-bench run{' --quick' if quick else ''}` from an empty run folder (training, sampling, "
                   "metrics, tables, figures), one child process; MNIST and classifier caches warm.", repeats)
    body += ["| what | value |", "|---|---:|", f"| wall time | {wall / 60:.1f} min ({wall:.0f} s) |",
             f"| peak resident memory | {peak:,.0f} MiB |", "",
             f"Goal ≤ 15 min on 2 cores (aim 10) — {'met' if wall <= 900 else 'NOT met'}"
             f"{'' if quick else (' (aim met)' if wall <= 600 else ' (aim of 10 min NOT met)')}."]
    return "\n".join(body), [{"wall_s": wall, "peak_mib": peak}]
