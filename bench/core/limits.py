"""What this machine can hold: the bounds every size a user passes is checked against, before any work.

A size past them (``sample --steps 99999999999``, ``prepare --workers 1000``, ``--resolution 100000``) used
to start, grow until the kernel killed it, and leave the machine unresponsive. Each bound is stated with
its reason in the message; the memory ones follow the machine (its RAM, or the cgroup limit under it).
"""
from __future__ import annotations

import math
import os
from pathlib import Path

from .threads import available_cores

#: sampler steps: far beyond any published budget (EDM: 18-256, IHDM: 200 levels, DDPM: 1000)
MAX_SAMPLER_STEPS = 100_000
#: bytes a decoding worker of ``prepare`` holds per pixel at most (RGB float32 resize buffers, twice)
PREPARE_BYTES_PER_PIXEL = 3 * 4 * 2
#: bytes one sampler call holds per input element at most (float32 states, predictions and the network's
#: activations of the project's backbones: a generous bound)
SAMPLE_BYTES_PER_ELEMENT = 4 * 64
#: the resident size of one spawned decoding worker (a fresh interpreter with numpy, PIL and torch)
WORKER_BYTES = 256 << 20


def memory_bytes() -> int:
    """The memory this process may use: the machine's RAM, or a smaller cgroup limit."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for limit in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total


def _gib(n: float) -> str:
    return f"{n / (1 << 30):.1f} GiB"


def check_workers(workers: int, option: str = "--workers") -> int:
    """At most 4 processes per core this process may use, and no more than the memory holds."""
    cores, mem = available_cores(), memory_bytes()
    top = max(1, min(4 * cores, mem // WORKER_BYTES))
    if workers > top:
        raise ValueError(f"{option} {workers} is more than this machine holds: at most {top} ({cores} cores, "
                         f"{_gib(mem)} of memory, ~{WORKER_BYTES >> 20} MB per worker)")
    return workers


def check_image_side(side: int, workers: int, option: str = "--resolution") -> int:
    """A square side whose decoding buffers, in every worker at once, fit in half the memory."""
    mem = memory_bytes()
    top = int(math.sqrt(mem / 2 / (workers * PREPARE_BYTES_PER_PIXEL)))
    if side > top:
        raise ValueError(f"{option} {side} needs ~{_gib(side * side * PREPARE_BYTES_PER_PIXEL)} per worker "
                         f"({workers} at once); this machine has {_gib(mem)}: at most {top} here")
    return side


def check_batch(batch: int, image_elements: int, option: str = "batch_size") -> int:
    """Images per sampler call whose arrays (float32, with the network's activations at
    :data:`SAMPLE_BYTES_PER_ELEMENT` bytes per input element) fit in half the memory."""
    mem = memory_bytes()
    top = max(1, int(mem / 2 / (image_elements * SAMPLE_BYTES_PER_ELEMENT)))
    if batch > top:
        raise ValueError(f"{option} {batch} needs ~{_gib(batch * image_elements * SAMPLE_BYTES_PER_ELEMENT)} for one "
                         f"sampler call; this machine has {_gib(mem)}: at most {top} images per call here")
    return batch


def check_sampler_steps(steps: int, option: str = "steps") -> int:
    if steps > MAX_SAMPLER_STEPS:
        raise ValueError(f"{option} must be at most {MAX_SAMPLER_STEPS:,} (far beyond any published sampler "
                         f"budget; the time grid alone would not fit), got {steps}")
    return steps


__all__ = ["MAX_SAMPLER_STEPS", "check_batch", "check_image_side", "check_sampler_steps", "check_workers",
           "memory_bytes"]
