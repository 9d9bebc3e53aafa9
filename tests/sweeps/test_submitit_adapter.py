"""The submitit adapter: each piece of submitit the sweeps rely on, private ones included, still
behaves as the sweep machinery expects (a submitit upgrade fails here first)."""
from __future__ import annotations

import pickle
import signal

import pytest

from hdfm_bench.sweeps import submitit_adapter as adapter


def test_slurm_parameters_and_sbatch_header(tmp_path):
    valid = adapter.valid_slurm_parameters()
    assert {"partition", "time", "gpus_per_node", "cpus_per_task", "mem", "array_parallelism"} <= valid
    header = adapter.sbatch_header(tmp_path / "%j", 3, {"time": 30, "cpus_per_task": 2, "gpus_per_node": 4},
                                   "hdfm-test")
    assert any(line.startswith("#SBATCH --array=0-2") for line in header)  # 3 array tasks
    assert "#SBATCH --job-name=hdfm-test" in header
    assert "#SBATCH --ntasks-per-node=4" in header  # one process per GPU
    assert "#SBATCH --time=30" in header and "#SBATCH --cpus-per-task=2" in header


def test_the_preemption_signal_is_usr2():
    assert adapter.preemption_signal() == signal.SIGUSR2


def test_result_pickles_are_read_as_submitit_writes_them(tmp_path):
    files = adapter.job_files(str(tmp_path / "%j"), "123")
    assert files["result"].name == "123_0_result.pkl" and files["stderr"].name == "123_0_log.err"
    files["result"].parent.mkdir(parents=True)
    files["result"].write_bytes(pickle.dumps(("success", {"ok": 1})))
    assert adapter.read_result(files["result"]) == ("success", "")
    files["result"].write_bytes(pickle.dumps(("error", "Traceback ...\nValueError: bad config\n")))
    assert adapter.read_result(files["result"]) == ("error", "ValueError: bad config")
    files["result"].write_bytes(b"garbage")
    outcome, why = adapter.read_result(files["result"])
    assert outcome == "error" and "unreadable result" in why


def test_executors_are_named_and_slurm_needs_its_client(tmp_path, monkeypatch):
    assert adapter.EXECUTORS == ("local", "slurm", "debug")
    with pytest.raises(adapter.AdapterError, match="unknown executor 'auto'"):
        adapter.make_executor("auto", tmp_path, {"time": 1}, "x")
    monkeypatch.setenv("PATH", str(tmp_path))  # no srun / sbatch / sacct here
    with pytest.raises(adapter.AdapterError, match="needs the Slurm client on PATH"):
        adapter.make_executor("slurm", tmp_path, {"time": 1}, "x")
    assert type(adapter.make_executor("debug", tmp_path, {"time": 1}, "x")).__name__ == "DebugExecutor"
    local = adapter.make_executor("local", tmp_path, {"time": 7, "ntasks_per_node": 2}, "x")
    assert type(local).__name__ == "LocalExecutor" and local.parameters["timeout_min"] == 7
    assert local.parameters["tasks_per_node"] == 2


def test_outside_a_job_there_is_no_job_environment():
    assert adapter.job_environment() is None
