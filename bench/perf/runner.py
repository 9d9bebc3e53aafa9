"""``hdfm-bench perf``: the benchmark registry and the runner that updates results/perf.md."""
from __future__ import annotations

import importlib
from pathlib import Path

from .harness import update_section

#: the sections: section NAME is measured by ``NAME_benchmark`` in the module ``hdfm_bench.perf.NAME``,
#: imported only when it runs (the CLI lists the sections without importing torch)
BENCHMARKS = ("spectral", "metrics", "inception", "memory", "toy", "overhead", "host", "streaming", "sampler", "suite",
              "gpu", "sweep")
# repetitions per benchmark when --repeats is not given (the suite runs for ~14 min: once)
DEFAULT_REPEATS = {"spectral": 30, "metrics": 3, "inception": 3, "memory": 1, "toy": 1, "overhead": 30, "host": 1,
                   "streaming": 1, "sampler": 10, "suite": 1, "gpu": 10, "sweep": 1}


def run(only: list[str] | None = None, out: str | Path = "results/perf.md", repeats: int | None = None) -> Path:
    """Run the named benchmarks (default: all) and replace their sections of ``out``."""
    names = only or list(BENCHMARKS)
    for name in names:
        if name not in BENCHMARKS:
            raise ValueError(f"unknown benchmark '{name}'; known: {', '.join(BENCHMARKS)}")
    if repeats is not None and repeats < 1:
        raise ValueError(f"--repeats must be >= 1, got {repeats}")
    for name in names:
        module = importlib.import_module(f"{__package__}.{name}")
        body, _ = getattr(module, f"{name}_benchmark")(repeats=repeats or DEFAULT_REPEATS[name])
        print(body)
        update_section(out, name, body)
    return Path(out)


__all__ = ["BENCHMARKS", "DEFAULT_REPEATS", "run"]
