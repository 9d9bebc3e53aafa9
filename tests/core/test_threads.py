"""CPU threads (core.threads): explicit > $HDFM_BENCH_THREADS > Slurm's CPUs > the cores this process
may use; the local executor divides the cores among the jobs it runs at once."""
from __future__ import annotations

import os

import pytest
import torch

from hdfm_bench.core.threads import THREADS_ENV, available_cores, default_threads, set_threads, share
from hdfm_bench.sweeps.spec import Sweep, SweepError
from hdfm_bench.sweeps.submit import local_slots

SPEC = """name = "threads"
[base]
task = "digits"
steps = 2
[grid]
seed = [0, 1, 2, 3]
[slurm]
cpus_per_task = {cpus}
"""


@pytest.fixture
def clean_env(monkeypatch):
    for key in (THREADS_ENV, "SLURM_CPUS_PER_TASK", "SLURM_JOB_ID"):
        monkeypatch.delenv(key, raising=False)
    before = torch.get_num_threads()
    yield monkeypatch
    torch.set_num_threads(before)


def test_available_cores_is_the_affinity_mask():
    assert available_cores() == len(os.sched_getaffinity(0))


def test_precedence_env_then_slurm_then_cores(clean_env):
    assert default_threads() == available_cores()
    clean_env.setenv("SLURM_CPUS_PER_TASK", "3")
    assert default_threads() == available_cores()  # outside a job (no SLURM_JOB_ID) it means nothing
    clean_env.setenv("SLURM_JOB_ID", "17")
    assert default_threads() == 3
    clean_env.setenv(THREADS_ENV, "1")
    assert default_threads() == 1


@pytest.mark.parametrize("bad", ["0", "-2", "two", "1.5"])
def test_bad_thread_counts_are_refused_naming_the_source(clean_env, bad):
    clean_env.setenv(THREADS_ENV, bad)
    with pytest.raises(ValueError, match=f"\\${THREADS_ENV} must be a positive integer"):
        default_threads()


def test_set_threads_sets_torch_and_the_children_environment(clean_env):
    assert set_threads(1) == 1
    assert torch.get_num_threads() == 1 and os.environ["OMP_NUM_THREADS"] == "1"
    for bad in (0, True, 1.0):
        with pytest.raises(ValueError):
            set_threads(bad)


@pytest.mark.parametrize("cores,jobs,want", [(2, 1, 2), (2, 2, 1), (2, 4, 1), (16, 3, 5), (8, 8, 1)])
def test_share_never_oversubscribes(cores, jobs, want):
    assert share(cores, jobs) == want
    assert share(cores, jobs) * min(jobs, cores) <= max(cores, jobs)


def test_local_slots_fit_the_cores(tmp_path, clean_env):
    cores = available_cores()
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.format(cpus=1))
    sweep = Sweep.load(spec, check=False)
    assert local_slots(sweep) == (cores, 1)  # one core per job: as many jobs as cores
    assert local_slots(sweep, parallel=1) == (1, cores)  # one job at a time gets every core
    spec.write_text(SPEC.format(cpus=cores))
    assert local_slots(Sweep.load(spec, check=False)) == (1, cores)
    with pytest.raises(SweepError, match="parallel must be a positive integer"):
        local_slots(sweep, parallel=0)


def test_every_command_sets_threads_before_its_work(clean_env, tmp_path):
    from hdfm_bench.cli import main

    missing = str(tmp_path / "no-store.jsonl")  # the command fails after the thread count is set
    torch.set_num_threads(2)
    assert main(["table", "--store", missing, "--threads", "1"]) != 0
    assert torch.get_num_threads() == 1
    torch.set_num_threads(2)
    clean_env.setenv(THREADS_ENV, "1")
    assert main(["table", "--store", missing]) != 0
    assert torch.get_num_threads() == 1
