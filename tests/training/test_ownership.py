"""One owner per run directory (core.runlock), failures recorded in run.json, no stale debris, no
older checkpoint over a newer one, and no checkpoint read for a run it does not belong to."""
from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hdfm_bench.core.rundir import checkpoint_path, read_record, record_path
from hdfm_bench.core.runlock import LOCK_FILE, RunLocked, run_lock
from hdfm_bench.training import checkpoint as ckpt
from hdfm_bench.training import load_run, train
from hdfm_bench.training.checkpoint import check_not_older
from tests.core.test_signals import _cli, wait_for
from tests.training.helpers import cfg_for


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _write_lock(run_dir: Path, **owner) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = run_dir / LOCK_FILE
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "what": "trained",
                                "started": "2026-12-01T00:00:00+00:00", **owner}))
    return lock


def test_a_second_trainer_of_the_same_run_refuses_and_the_first_finishes(tmp_path):
    """Two shells start the same `train`: the second refuses with one line naming the owner; the
    first trains to the end; the lock is gone afterwards."""
    args = _cli("train", "--task", "digits", "--path", "noise_fm", "--steps", "400", "--batch-size", "16",
                "--backbone-params", "patch=2", "--backbone-params", "width=32", "--backbone-params", "depth=1",
                "--out-dir", str(tmp_path), "--no-progress", "--threads", "1")
    first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: any(tmp_path.glob(f"*/{LOCK_FILE}")) or first.poll() is not None, what="the first lock")
        assert first.poll() is None, first.communicate()[1][-2000:]
        (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
        second = subprocess.run(args, capture_output=True, text=True, timeout=300)
        assert second.returncode == 2
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("hdfm-bench: error: run ") and \
            f"is already being trained by PID {first.pid} on {socket.gethostname()}" in lines[0], second.stderr
        _, err = first.communicate(timeout=600)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err[-2000:]
    rec = read_record(run_dir)
    assert rec["status"] == "done" and rec["step"] == 400 and rec["starts"] == [0]
    assert not (run_dir / LOCK_FILE).exists()


def test_stale_locks_are_reported_and_taken_over(tmp_path, capsys, monkeypatch):
    run_dir = tmp_path / "run"
    _write_lock(run_dir, pid=_dead_pid())
    with run_lock(run_dir) as lock:
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    err = capsys.readouterr().err
    assert "taking over the stale lock of run" in err and "is gone" in err
    assert not (run_dir / LOCK_FILE).exists()
    # a PID that now belongs to another, later process (pid reuse): stale as well
    _write_lock(run_dir, pid=os.getpid(), pid_start="1")
    with run_lock(run_dir):
        pass
    assert "now belongs to another process" in capsys.readouterr().err
    # a requeued Slurm job finds its own earlier incarnation's lock (killed on another node)
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    _write_lock(run_dir, host="node-17", pid=12345, slurm_job_id="4242")
    with run_lock(run_dir):
        pass
    assert "earlier run of Slurm job 4242" in capsys.readouterr().err


def test_live_and_foreign_locks_are_refused_naming_the_owner_and_the_file(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    run_dir = tmp_path / "run"
    lock = _write_lock(run_dir, host="node-17", pid=12345)
    with pytest.raises(RunLocked, match=rf"already being trained by PID 12345 on node-17 .*delete {lock}"):
        with run_lock(run_dir):
            pass
    assert json.loads(lock.read_text())["host"] == "node-17"  # left as it was
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _write_lock(run_dir, pid=sleeper.pid)
        with pytest.raises(RunLocked, match=f"PID {sleeper.pid}"):
            with run_lock(run_dir):
                pass
    finally:
        sleeper.kill()
        sleeper.wait()


def test_train_under_a_live_lock_refuses_before_writing_anything(tmp_path):
    cfg = cfg_for(tmp_path, steps=4, checkpoint_every=2)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _write_lock(cfg.run_dir(), pid=sleeper.pid)
        with pytest.raises(RunLocked):
            train(cfg, progress=False)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert sorted(p.name for p in cfg.run_dir().iterdir()) == [LOCK_FILE]


def test_any_training_error_marks_the_run_failed_and_releases_the_lock(tmp_path, monkeypatch):
    cfg = cfg_for(tmp_path, steps=6, checkpoint_every=2)
    calls = {"n": 0}
    real = torch.optim.AdamW.step

    def step_then_fail(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("simulated device error\nCUDA error: an illegal memory access was encountered")
        return real(self, *a, **k)

    monkeypatch.setattr(torch.optim.AdamW, "step", step_then_fail)
    with pytest.raises(RuntimeError, match="simulated device error"):
        train(cfg, progress=False)
    rec = read_record(cfg.run_dir())
    assert rec["status"] == "failed" and rec["step"] == 2
    assert rec["error"] == "RuntimeError: CUDA error: an illegal memory access was encountered"
    assert not (cfg.run_dir() / LOCK_FILE).exists()
    monkeypatch.setattr(torch.optim.AdamW, "step", real)
    assert train(cfg, progress=False).record["status"] == "done"  # the same call resumes once the cause is gone


def test_a_full_disk_says_so_names_the_file_and_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    cfg = cfg_for(tmp_path, steps=4, checkpoint_every=2)
    real = torch.save
    saves = {"n": 0}

    def save_then_fill(obj, f, *a, **k):
        saves["n"] += 1
        if saves["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", save_then_fill)
    with pytest.raises(OSError, match=rf"disk full: no space left to write {checkpoint_path(cfg.run_dir())}"):
        train(cfg, progress=False)
    state = ckpt.load(checkpoint_path(cfg.run_dir()))
    assert state["step"] == 2  # the earlier checkpoint is intact
    rec = read_record(cfg.run_dir())
    assert rec["status"] == "failed" and rec["error"].startswith("DiskFull: ") and "checkpoint.pt" in rec["error"]
    assert [p.name for p in cfg.run_dir().iterdir() if p.name.startswith(".")] == []


def test_resume_removes_the_temporaries_a_killed_save_left(tmp_path):
    cfg = cfg_for(tmp_path, steps=4, checkpoint_every=2)
    with pytest.raises(Exception, match="stopped before step 2"):
        train(cfg, progress=False, stop_at=2)
    run_dir = cfg.run_dir()
    debris = [run_dir / ".checkpoint.pt.k3j2l1.pt", run_dir / ".run.json.x8y7z6.json"]
    for p in debris:
        p.write_bytes(b"half a file")
    keep = run_dir / ".notes.txt"  # not ours: left alone
    keep.write_text("mine")
    assert train(cfg, progress=False).record["status"] == "done"
    assert not any(p.exists() for p in debris) and keep.exists()


def test_an_older_checkpoint_is_never_written_over_a_newer_one(tmp_path):
    cfg = cfg_for(tmp_path, steps=4, checkpoint_every=2)
    train(cfg, progress=False)
    ck = checkpoint_path(cfg.run_dir())
    before = ck.read_bytes()
    with pytest.raises(ckpt.CheckpointError, match="holds step 4, newer than this process's step 2"):
        check_not_older(ck, 2)
    check_not_older(ck, 4)  # the same step (a re-save) is fine
    assert ck.read_bytes() == before


def test_sample_and_evaluate_refuse_a_checkpoint_of_another_run(tmp_path):
    a, b = cfg_for(tmp_path, steps=2, seed=0), cfg_for(tmp_path, steps=2, seed=1)
    train(a, progress=False)
    train(b, progress=False)
    load_run(b.run_dir())  # its own checkpoint is fine
    shutil.copy(checkpoint_path(a.run_dir()), checkpoint_path(b.run_dir()))
    with pytest.raises(ckpt.CheckpointError, match=f"belongs to run {a.run_id()}, not to this folder's run "
                                                   f"{b.run_id()}"):
        load_run(b.run_dir())
    # without a run.json, a folder named like a run id must carry that run's checkpoint
    record_path(b.run_dir()).unlink()
    with pytest.raises(ckpt.CheckpointError, match="not to the run its folder is named after"):
        load_run(b.run_dir())
    renamed = tmp_path / "my-best-run"  # a copy under a name of one's own: trusted
    shutil.copytree(a.run_dir(), renamed)
    assert load_run(renamed)[0].run_id() == a.run_id()
    res = subprocess.run(_cli("sample", str(b.run_dir()), "-n", "4", "--steps", "2"), capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and f"belongs to run {a.run_id()}" in res.stderr


def test_sigterm_still_releases_the_lock(tmp_path):
    args = _cli("train", "--task", "digits", "--path", "noise_fm", "--steps", "100000", "--checkpoint-every",
                "50000", "--batch-size", "16", "--out-dir", str(tmp_path), "--no-progress", "--threads", "1")
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: any(read_record(p).get("status") == "running" for p in tmp_path.iterdir() if p.is_dir())
                 or proc.poll() is not None, what="training")
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert not (run_dir / LOCK_FILE).exists() and read_record(run_dir)["status"] == "running"


def test_an_unreadable_image_is_named_in_one_line_and_leaves_no_run_directory(tmp_path):
    from PIL import Image

    for c in "ab":
        (tmp_path / "images" / "train" / c).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (16, 16), (40 * i, 0, 0)).save(tmp_path / "images" / "train" / c / f"{i}.png")
    bad = tmp_path / "images" / "train" / "a" / "bad.png"
    bad.write_bytes(b"not an image")
    out = tmp_path / "runs"
    res = subprocess.run(_cli("train", "--task", "imagefolder", "--task-params", f"root={tmp_path / 'images'}",
                              "--task-params", "resolution=16", "--steps", "3", "--batch-size", "10",
                              "--backbone-params", "patch=4", "--out-dir", str(out), "--no-progress", "--threads", "1"),
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [f"hdfm-bench: error: cannot read image {bad}: UnidentifiedImageError: "
                                               f"cannot identify image file '{bad}'"]
    assert not out.exists() or list(out.iterdir()) == []


def test_a_corrupt_run_record_is_named_and_never_replaced(tmp_path):
    cfg = cfg_for(tmp_path, steps=2, checkpoint_every=2)
    train(cfg, progress=False)
    rec = record_path(cfg.run_dir())
    rec.write_text('{"run_id": ')  # a record cut short (e.g. by a copy)
    with pytest.raises(ckpt.CheckpointError, match=rf"{rec} is unreadable \(JSONDecodeError: .*\); the checkpoint is "
                                                   "untouched"):
        train(cfg, progress=False)
    assert rec.read_text() == '{"run_id": ' and not (cfg.run_dir() / LOCK_FILE).exists()
    rec.unlink()  # moved aside: training goes on from the checkpoint
    assert train(cfg, progress=False).record["status"] == "done"
