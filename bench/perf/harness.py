"""Performance harness: side-by-side measurements written to results/perf.md.

Benchmarks, not tests: medians of interleaved repetitions on whatever machine runs them, with
the machine recorded next to the numbers. Each benchmark owns one marked section of perf.md,
so re-running one leaves the others in place.
"""
from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from hdfm_bench.core.io import write_text

HEADER = """# hdfm-bench performance

Benchmarks (not tests): medians of interleaved repetitions; each section records the machine it
ran on. Regenerate with `hdfm-bench perf` (one section: `--only NAME`).
"""


def machine() -> str:
    """The CPU, its logical CPUs, torch's thread count and the library versions."""
    import torch

    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        if names:
            cpu = names[0]
    except OSError:
        pass
    return (f"{cpu}; {os.cpu_count()} logical CPUs, torch threads {torch.get_num_threads()}; "
            f"torch {torch.__version__}, Python {platform.python_version()}")


def interleaved_medians(fns: dict[str, Callable[[], object]], repeats: int, block: int = 5,
                        warmup: int = 2) -> dict[str, float]:
    """Median seconds per call of each fn over ``repeats`` calls.

    The fns take turns in blocks of ``block`` calls (AAAAA BBBBB AAAAA ...), so machine drift is
    shared while each fn runs in its own steady state, as inside a real loop (interleaving single
    calls lets one fn's large temporaries evict the other's memory); the first ``warmup`` calls
    of every block are not timed.
    """
    times: dict[str, list[float]] = {k: [] for k in fns}
    while min(len(v) for v in times.values()) < repeats:
        for key, fn in fns.items():
            for i in range(block + warmup):
                t0 = time.perf_counter()
                fn()
                if i >= warmup:
                    times[key].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def update_section(dest: str | Path, name: str, body: str) -> Path:
    """Replace (or append) the ``name`` section of perf.md atomically."""
    dest = Path(dest)
    text = dest.read_text() if dest.exists() else HEADER
    block = f"<!-- section:{name} -->\n{body.rstrip()}\n<!-- /section:{name} -->"
    pattern = re.compile(rf"<!-- section:{re.escape(name)} -->.*?<!-- /section:{re.escape(name)} -->", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    return write_text(dest, text)


def section_header(title: str, what: str, repeats: int) -> list[str]:
    return [f"## {title}", "", f"Machine: {machine()}. Measured {_dt.date.today().isoformat()}, median of "
            f"{repeats} interleaved calls each. {what}", ""]


def interleaved(fns, repeats: int, block: int = 5) -> dict[str, float]:
    return interleaved_medians(fns, repeats, block=block, warmup=1)



class StepClock:
    """``on_step`` callback of a real training run timing its steps in windows of ``every`` steps.

    The trainer reports losses at read-backs (every ``log_every`` steps), so single steps are not
    observable from outside; the time between the reports of steps k·every and (k+1)·every, divided by
    ``every``, is. Windows before ``skip`` (warm-up, compilation) are left out. ``between``, when given,
    runs at every window boundary (e.g. a reference computation timed side by side with the trainer, so
    both share the machine's drift); its time is kept out of the trainer's and its durations are in
    ``between_seconds``."""

    def __init__(self, every: int = 10, skip: int = 1, between: Callable[[], float] | None = None) -> None:
        self.every, self.skip, self.between = every, skip, between
        self.stamps: list[float] = []
        self.between_seconds: list[float] = []
        self._paused = 0.0

    def __call__(self, step: int, loss: float) -> None:
        if step % self.every:
            return
        t0 = time.perf_counter()
        self.stamps.append(t0 - self._paused)
        if self.between is not None:
            self.between_seconds.append(self.between())
            self._paused += time.perf_counter() - t0

    def step_seconds(self) -> float:
        """Median seconds per step over the windows after the skipped ones."""
        stamps = self.stamps[self.skip:]
        if len(stamps) < 2:
            raise ValueError(f"StepClock: {len(self.stamps)} report(s) of every {self.every} steps; need "
                             f"{self.skip + 2} (train longer)")
        return statistics.median((b - a) / self.every for a, b in zip(stamps, stamps[1:]))


#: (path, path parameters) each framework-cost benchmark runs, each with its recipe (target, sampler);
#: the level paths at 10 levels so one sampling run stays short
BENCH_PATHS = [("noise_fm", {}), ("hdfm", {}), ("blurring_diffusion", {}), ("hdfm_code", {}), ("ihdm", {"K": 10}),
               ("cold_blur", {"T": 10})]


def small_vit(shape=(1, 28, 28), size="small", patch=4, batch=64, classes=10, device="cpu"):
    """(model, x, y): a ViT and a fixed batch for the framework-cost benchmarks."""
    import torch

    from hdfm_bench.backbones import build_backbone

    torch.manual_seed(0)
    model = build_backbone("vit", shape=shape, num_classes=classes, size=size, patch=patch).to(device)
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(batch, *shape, generator=g) * 2 - 1).to(device)
    y = torch.randint(classes, (batch,), generator=g).to(device)
    return model, x, y
