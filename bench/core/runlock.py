"""One owner per run directory: a lock file with the owner's host and PID, taken atomically.

Two processes training the same run (two shells, a sweep re-submitted while its job still runs)
would write each other's checkpoints. The trainer therefore takes ``RUN/run.lock`` before it
touches anything in the folder: the file is created with ``O_CREAT | O_EXCL`` (atomic on local
file systems and on NFSv3+), holds {host, pid, process start time, Slurm job id, started}, and is
removed when the trainer ends. A second process refuses with one line naming the owner.

A lock left by a process that no longer exists is *stale*: on the same host when that PID is gone
(or now belongs to a process that started later), or when it was taken by an earlier run of this
same Slurm job (a requeued job after a kill). A stale lock is reported and taken over. A lock from
another host cannot be checked from here: the message says which file to delete if that process is
known to be gone.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from .io import fsync_dir

LOCK_FILE = "run.lock"
#: an empty or unreadable lock younger than this may be one being written right now
_WRITING_GRACE_S = 10.0


class RunLocked(RuntimeError):
    """The run directory belongs to another live process; one line naming it."""


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot; with the pid, a process's identity), None
    when there is no such process or it is a zombie (dead, not yet reaped by its parent)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else fields[19]  # state, and field 22 counted after the name


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _me(what: str) -> dict:
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "pid_start": process_start_time(pid),
            "slurm_job_id": os.environ.get("SLURM_JOB_ID"), "what": what,
            "started": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")}


def stale_reason(owner: dict | None, age_s: float) -> str | None:
    """Why the lock of ``owner`` is stale, or None while its process may still be alive."""
    if owner is None:
        return None if age_s < _WRITING_GRACE_S else "unreadable lock file"
    me = _me("")
    if owner.get("slurm_job_id") and owner["slurm_job_id"] == me["slurm_job_id"] and owner.get("pid") != me["pid"]:
        return f"left by an earlier run of Slurm job {owner['slurm_job_id']} (requeued)"
    if owner.get("host") != me["host"]:
        return None
    pid = owner.get("pid")
    if not isinstance(pid, int) or not _pid_alive(pid):
        return f"PID {pid} on {owner.get('host')} is gone"
    started = process_start_time(pid)
    if owner.get("pid_start") and started and started != owner["pid_start"]:
        return f"PID {pid} on {owner.get('host')} now belongs to another process"
    return None


def read_owner(path: Path) -> dict | None:
    try:
        owner = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return owner if isinstance(owner, dict) else None


@contextlib.contextmanager
def run_lock(run_dir: str | os.PathLike, what: str = "trained") -> Iterator[Path]:
    """Own ``run_dir`` for the block (the folder must exist); RunLocked when a live process owns it."""
    path = Path(run_dir) / LOCK_FILE
    me = _me(what)
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = read_owner(path)
            try:
                age = time.time() - path.stat().st_mtime
            except FileNotFoundError:  # its owner just released it
                continue
            reason = stale_reason(owner, age)
            if reason is None:
                who = (f"PID {owner.get('pid')} on {owner.get('host')} since {owner.get('started')}"
                       if owner else "a process that is writing its lock now")
                doing = owner.get("what", what) if owner else what
                raise RunLocked(f"run {Path(run_dir).name} is already being {doing} by {who}; wait for it to end "
                                f"(or, if that process is gone, delete {path})") from None
            print(f"hdfm-bench: taking over the stale lock of {Path(run_dir).name} ({reason})", file=sys.stderr)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            continue
        try:
            os.write(fd, json.dumps(me).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        fsync_dir(path.parent)
        break
    else:
        raise RunLocked(f"could not take the lock {path}: other processes keep taking it")
    try:
        yield path
    finally:
        owner = read_owner(path)
        if owner is not None and owner.get("pid") == me["pid"] and owner.get("host") == me["host"]:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


__all__ = ["LOCK_FILE", "RunLocked", "run_lock", "stale_reason", "read_owner", "process_start_time"]
