"""SIGTERM is handled like a preemption notice (core.signals): a trainer finishes its step, writes a
checkpoint of it, the command prints one line and exits 143; outside training it stops at once."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from hdfm_bench.core.rundir import checkpoint_path, read_record
from hdfm_bench.core.signals import EXIT_TERMINATED, Terminated, Termination


def test_exit_status_is_what_a_shell_reports_for_sigterm():
    assert EXIT_TERMINATED == 143


def test_outside_training_sigterm_raises_at_once():
    term = Termination().install()
    try:
        with pytest.raises(Terminated):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler runs at the next bytecode; this line is never finished
        assert term.should_stop()
    finally:
        term.uninstall()
    assert signal.getsignal(signal.SIGTERM) is not term._handle


def test_inside_training_sigterm_only_sets_the_flag_until_the_scope_ends():
    term = Termination().install()
    try:
        seen = []
        with pytest.raises(Terminated):
            with term.training():
                os.kill(os.getpid(), signal.SIGTERM)
                seen.append(term.should_stop())  # still running: the trainer polls the flag
        assert seen == [True]
    finally:
        term.uninstall()


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "hdfm_bench.cli", *args]


def wait_for(predicate, timeout: float = 120.0, what: str = "") -> None:
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def terminate_when(proc: subprocess.Popen, predicate, what: str) -> tuple[int, str]:
    """Send SIGTERM once ``predicate`` holds; return (exit status, stderr)."""
    try:
        wait_for(lambda: predicate() or proc.poll() is not None, what=what)
        assert proc.poll() is None, f"the command ended before {what}: {proc.communicate()[1][-2000:]}"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, err


def started(out: Path, invocations: int):
    """A predicate: the run under ``out`` has begun its ``invocations``-th training invocation."""
    def check() -> bool:
        runs = [p for p in out.iterdir() if p.is_dir()]
        rec = read_record(runs[0]) if runs else {}
        return rec.get("status") == "running" and len(rec.get("starts", [])) >= invocations
    return check


def after(predicate, seconds: float):
    """``predicate``, then ``seconds`` more (a few steps of training)."""
    state = {"since": None}

    def check() -> bool:
        if state["since"] is None and predicate():
            state["since"] = time.monotonic()
        return state["since"] is not None and time.monotonic() - state["since"] >= seconds
    return check


def stopped_step(rc: int, err: str) -> int:
    """The step named by the one closing line of a SIGTERM-ed training (exit 143, no traceback)."""
    assert rc == EXIT_TERMINATED, err[-2000:]
    assert "Traceback" not in err
    last = [line for line in err.strip().splitlines() if line.strip()][-1]
    assert last.startswith("hdfm-bench: terminated (SIGTERM) after step "), last
    return int(last.split("after step ")[1].split(":")[0])


def test_sigterm_during_train_checkpoints_the_step_and_the_same_command_resumes_there(tmp_path: Path):
    args = _cli("train", "--task", "digits", "--path", "noise_fm", "--steps", "100000", "--checkpoint-every",
                "50000", "--batch-size", "16", "--out-dir", str(tmp_path), "--no-progress", "--threads", "1")
    steps = []
    for invocation in (1, 2):
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        rc, err = terminate_when(proc, after(started(tmp_path, invocation), 2.0), f"invocation {invocation}")
        steps.append(stopped_step(rc, err))
        (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
        state = torch.load(checkpoint_path(run_dir), map_location="cpu", weights_only=True)
        assert state["step"] == steps[-1]  # the step it finished is on disk, between periodic checkpoints
        assert 0 < steps[-1] < 50000
        rec = read_record(run_dir)
        assert rec["status"] != "done"
    assert rec["starts"] == [0, steps[0]]  # the second invocation resumed from the first one's last step
    assert steps[1] > steps[0]
