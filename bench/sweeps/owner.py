"""A local sweep owns its jobs: they stop when it is stopped, and when it dies.

submitit's local jobs are processes of their own (a controller and its tasks) that outlive the
``sweep`` command, and its job environment bypasses SIGTERM. So the command and its jobs share two
facts instead of signals: the command's identity (pid and start time, so a reused pid is not taken
for it) and a stop file in the sweep's job folder. The command writes the stop file on Ctrl-C,
SIGTERM or SIGHUP; a job polls both from a watcher thread and stops when the file appears or the
command is gone (SIGKILL): at the trainer's next step boundary, with a checkpoint, as on a
preemption; outside training (an evaluation) at once. It then exits without a result, which
``status`` shows as ``interrupted``; the same ``sweep`` command later resumes it.
"""
from __future__ import annotations

import _thread
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from hdfm_bench.core.runlock import process_start_time

#: seconds between a job's looks at the stop file and its owner
POLL_S = 0.5
#: seconds a job's trainer has to reach a step boundary before the job is interrupted where it is
GRACE_S = 10.0
#: the exit status of a stopped job (as SIGINT's): not submitit's requeue status, so nothing restarts it
EXIT_STOPPED = 128 + signal.SIGINT
STOP_FILE = "STOP"
#: the signal the watcher raises in the job's main thread (the job's SIGINT is ignored: see :func:`detached`)
INTERRUPT = signal.SIGUSR1


def _interrupted(signum, frame) -> None:
    raise KeyboardInterrupt


def this_process() -> dict:
    """The identity a job watches: this process's pid and start time."""
    return {"pid": os.getpid(), "start": process_start_time(os.getpid())}


def alive(owner: dict) -> bool:
    """Whether the process ``owner`` (from :func:`this_process`) still runs (not a later one with its pid)."""
    return process_start_time(int(owner["pid"])) == owner["start"]


class StopWatch:
    """A job's watcher: ``is_set()`` once the stop file exists or the owner is gone; after
    :data:`GRACE_S` more seconds the main thread is interrupted where it is (KeyboardInterrupt)."""

    def __init__(self, owner: dict | None, stop_file: str | os.PathLike | None) -> None:
        self.owner, self.stop_file = owner, Path(stop_file) if stop_file else None
        self.event, self.done = threading.Event(), threading.Event()
        self.why = ""

    def start(self) -> StopWatch:
        if self.owner is None and self.stop_file is None:
            return self
        if threading.current_thread() is threading.main_thread():  # how the watcher interrupts the job
            signal.signal(INTERRUPT, _interrupted)
        threading.Thread(target=self._watch, name="hdfm-bench-stopwatch", daemon=True).start()
        return self

    def is_set(self) -> bool:
        return self.event.is_set()

    def _reason(self) -> str:
        if self.stop_file is not None and self.stop_file.exists():
            return "the sweep was stopped"
        if self.owner is not None and not alive(self.owner):
            return f"the sweep (pid {self.owner['pid']}) is gone"
        return ""

    def _watch(self) -> None:
        while not self.done.wait(POLL_S):
            self.why = self._reason()
            if self.why:
                self.event.set()
                break
        if self.done.wait(GRACE_S):
            return
        _thread.interrupt_main(INTERRUPT)  # no step boundary in time (an evaluation): stop where it is

    def exit(self) -> None:
        """End the job process now, without a result (``status``: interrupted); its checkpoint is written."""
        print(f"hdfm-bench: job stopped ({self.why}); checkpoint kept; the same sweep resumes it", file=sys.stderr,
              flush=True)
        os._exit(EXIT_STOPPED)

    def close(self) -> None:
        self.done.set()


def stop_jobs(folder: Path, jobs: list, wait_s: float = 60.0) -> list[str]:
    """Ask the sweep's jobs to stop (the stop file in ``folder``), wait up to ``wait_s`` for them to end,
    and return one line per job with its state; the stop file is removed afterwards."""
    stop = folder / STOP_FILE
    stop.parent.mkdir(parents=True, exist_ok=True)
    stop.write_text(f"{os.getpid()}\n")
    try:
        deadline = time.monotonic() + wait_s
        while any(not j.done() for j in jobs) and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        stop.unlink(missing_ok=True)
    return [f"job {j.job_id}: {'stopped' if j.done() else f'still running after {wait_s:.0f} s'}" for j in jobs]


@contextlib.contextmanager
def detached() -> Iterator[None]:
    """Start local jobs inside this block: they inherit SIGINT and SIGHUP ignored (Python keeps an ignored
    SIGINT ignored), so a Ctrl-C or a closed terminal reaches the ``sweep`` command alone, which then stops
    its jobs at a safe point through the stop file, instead of killing them mid-step."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def clear(folder: Path) -> None:
    """Remove a stop file a killed ``sweep`` command left behind (before new jobs start)."""
    (folder / STOP_FILE).unlink(missing_ok=True)


__all__ = ["EXIT_STOPPED", "StopWatch", "alive", "clear", "detached", "stop_jobs", "this_process"]
