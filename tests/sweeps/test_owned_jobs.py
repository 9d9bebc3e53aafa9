"""A local sweep owns its jobs: SIGINT to the ``sweep`` command stops every job it started at a step boundary
(checkpoint written, status 'interrupted'), and so does the command's death by SIGKILL; the same command
then finishes them with the weights of an uninterrupted sweep."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from hdfm_bench.cli import main
from hdfm_bench.sweeps.spec import Sweep
from hdfm_bench.sweeps.state import status
from tests.sweeps.test_sweeps import write_spec

STEPS = 400


def _spec(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return write_spec(folder, steps=STEPS, checkpoint_every=STEPS)  # two runs; no periodic checkpoint


def _sweep_processes(folder: Path) -> list[int]:
    """Processes whose command line names the sweep's folder (submitit controllers and job tasks)."""
    mark = str(folder / "sweep").encode()
    out = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                if mark in (proc / "cmdline").read_bytes():
                    out.append(int(proc.name))
            except OSError:
                continue
    return out


def _started(s: Sweep) -> bool:
    recs = [r.config.run_dir() / "run.json" for r in s.runs]
    return all(p.exists() and json.loads(p.read_text()).get("starts") for p in recs)


def _until(cond, timeout: float, what: str) -> float:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)
    return time.monotonic() - t0


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict[str, dict]:
    """The weights of the same sweep run without interruption (debug executor), by run id."""
    folder = tmp_path_factory.mktemp("whole")
    assert main(["sweep", str(_spec(folder)), "--executor", "debug"]) == 0
    s = Sweep.load(_spec(folder))
    return {r.run_id: torch.load(r.config.run_dir() / "checkpoint.pt", weights_only=True)["model"] for r in s.runs}


def _stop_and_resume(tmp_path: Path, sig: int, uninterrupted: dict, within: float) -> None:
    spec = _spec(tmp_path)
    s = Sweep.load(spec)
    parent = subprocess.Popen([sys.executable, "-m", "hdfm_bench.cli", "sweep", str(spec), "--executor", "local",
                               "--parallel", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        _until(lambda: _started(s), 120, "both jobs to start training")
        time.sleep(1.0)
        assert len(_sweep_processes(tmp_path)) >= 4  # two controllers, two tasks
        os.kill(parent.pid, sig)
        _, err = parent.communicate(timeout=within)
        assert parent.returncode != 0
        if sig == signal.SIGINT:
            assert err.count("stopped") >= 2 and "interrupted" in err, err[-2000:]
        _until(lambda: not _sweep_processes(tmp_path), within, "every job process to end")
    finally:
        if parent.poll() is None:
            parent.kill()
    rows = status(s)
    assert [r["state"] for r in rows] == ["interrupted", "interrupted"], rows
    for run in s.runs:  # a checkpoint of the step each job reached, not of the end
        step = torch.load(run.config.run_dir() / "checkpoint.pt", weights_only=True)["step"]
        assert 0 < step < STEPS
    assert main(["sweep", str(spec), "--executor", "local", "--parallel", "2"]) == 0  # the same command resumes
    for run in s.runs:
        state = torch.load(run.config.run_dir() / "checkpoint.pt", weights_only=True)
        record = json.loads((run.config.run_dir() / "run.json").read_text())
        assert state["step"] == STEPS and len(record["starts"]) == 2
        for name, value in uninterrupted[run.run_id].items():
            assert torch.equal(state["model"][name], value), name
    assert [r["state"] for r in status(s)] == ["done", "done"]


def test_sigint_to_a_local_sweep_stops_its_jobs_and_the_same_command_resumes_them(tmp_path, uninterrupted):
    _stop_and_resume(tmp_path, signal.SIGINT, uninterrupted, within=10)


def test_the_jobs_of_a_killed_local_sweep_stop_by_themselves(tmp_path, uninterrupted):
    _stop_and_resume(tmp_path, signal.SIGKILL, uninterrupted, within=30)


def test_ctrl_c_on_a_debug_sweep_shows_its_run_interrupted_and_the_same_command_finishes_it(tmp_path):
    """The debug executor trains in the command's own process: Ctrl-C stops it there (exit 130), the run is
    'interrupted' (not 'pending'), and the same command finishes the sweep."""
    spec = _spec(tmp_path)
    s = Sweep.load(spec)
    first = s.runs[0].config.run_dir() / "run.json"
    parent = subprocess.Popen([sys.executable, "-m", "hdfm_bench.cli", "sweep", str(spec), "--executor", "debug"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _until(lambda: first.exists() and json.loads(first.read_text()).get("starts"), 120, "training to start")
        time.sleep(1.0)
        os.kill(parent.pid, signal.SIGINT)
        _, err = parent.communicate(timeout=30)
    finally:
        if parent.poll() is None:
            parent.kill()
    assert parent.returncode == 130 and "interrupted" in err, err[-2000:]
    assert [r["state"] for r in status(s)] == ["interrupted", "pending"]
    assert main(["sweep", str(spec), "--executor", "debug"]) == 0
    assert [r["state"] for r in status(s)] == ["done", "done"]
