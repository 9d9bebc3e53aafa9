"""TensorBoard event files (training.tblog): read back with tensorboard's own reader, a resumed run
(in-process stop, or SIGKILL of the training process) holds the curves of an uninterrupted one, each
step once; ``tb = false`` writes nothing and changes no number; ``evaluate`` adds its metrics at the
checkpoint's step."""
from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import signal
import time

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from hdfm_bench.core.config import RunConfig
from hdfm_bench.core.rundir import TB_DIR, checkpoint_path
from hdfm_bench.evaluation.evaluate import evaluate_run
from hdfm_bench.sampling.live import checkpoint_grid, grid_hook
from hdfm_bench.training import Interrupted, TrainLog, train
from hdfm_bench.training.checkpoint import load
from tests.training.helpers import cfg_for

STEPS, EVERY, CKPT, LOG = 60, 20, 10, 4  # steps, keep_every (grids), checkpoint_every, log_every
SCALARS = ("train/loss", "train/lr", "train/grad_norm", "train/seconds_per_step", "train/images_per_s")


def _events(run_dir) -> EventAccumulator:
    acc = EventAccumulator(str(run_dir / TB_DIR), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def _curves(run_dir) -> dict[str, list]:
    acc = _events(run_dir)
    out = {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in SCALARS}
    out["samples"] = [e.step for e in acc.Images("samples")]
    return out


def _cfg(tmp_path, name: str, **kw) -> RunConfig:
    return cfg_for(tmp_path / name, steps=STEPS, checkpoint_every=CKPT, keep_every=EVERY, log_every=LOG, **kw)


def _slow_train(config: dict) -> None:
    """A training process slowed down (sleeps between read-backs) so that it can be killed mid-run."""
    cfg = RunConfig.from_mapping(config)
    train(cfg, progress=False, on_checkpoint=grid_hook(cfg.run_dir()), on_step=lambda s, loss: time.sleep(0.05))


def _assert_same_curves(a: dict, b: dict) -> None:
    for tag in ("train/loss", "train/lr", "train/grad_norm"):
        assert [s for s, _ in a[tag]] == [s for s, _ in b[tag]] == list(range(1, STEPS + 1)), tag
        np.testing.assert_allclose([v for _, v in a[tag]], [v for _, v in b[tag]], rtol=1e-6, err_msg=tag)
    read_backs = sorted({*range(LOG, STEPS + 1, LOG), *range(CKPT, STEPS + 1, CKPT)})  # and at checkpoints
    for tag in ("train/seconds_per_step", "train/images_per_s"):  # timings differ; their steps do not
        assert [s for s, _ in a[tag]] == [s for s, _ in b[tag]] == read_backs, tag
    assert a["samples"] == b["samples"] == list(range(EVERY, STEPS + 1, EVERY))


def test_a_resumed_run_logs_each_step_once_as_an_uninterrupted_one(tmp_path):
    full = _cfg(tmp_path, "full")
    res = train(full, progress=False, on_checkpoint=grid_hook(full.run_dir()))
    ref = _curves(full.run_dir())
    assert [s for s, _ in ref["train/loss"]] == [s for s, _ in res.record["history"]]
    np.testing.assert_allclose([v for _, v in ref["train/loss"]], [v for _, v in res.record["history"]], rtol=1e-6)
    lrs = dict(ref["train/lr"])
    assert lrs[1] == pytest.approx(full.lr / full.warmup) and lrs[STEPS] == pytest.approx(full.lr)

    # stopped in-process before step 27: steps 21-24 were logged (and flushed) after the step-20 checkpoint
    cut = _cfg(tmp_path, "cut")
    with pytest.raises(Interrupted):
        train(cut, progress=False, on_checkpoint=grid_hook(cut.run_dir()), stop_at=27)
    assert max(s for s, _ in _curves(cut.run_dir())["train/loss"]) == 24
    train(cut, progress=False, on_checkpoint=grid_hook(cut.run_dir()))
    _assert_same_curves(ref, _curves(cut.run_dir()))

    # SIGKILL of a training process once its step-20 grid (the first kept checkpoint) is on disk, then resume
    killed = _cfg(tmp_path, "killed")
    proc = mp.get_context("spawn").Process(target=_slow_train, args=(killed.to_dict(),))
    proc.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.is_alive():
        if (killed.run_dir() / TB_DIR).is_dir() and "samples" in _events(killed.run_dir()).Tags()["images"]:
            break
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    assert proc.exitcode == -signal.SIGKILL
    assert load(checkpoint_path(killed.run_dir()))["step"] < STEPS  # killed mid-run, not after it
    train(killed, progress=False, on_checkpoint=grid_hook(killed.run_dir()))
    _assert_same_curves(ref, _curves(killed.run_dir()))

    # evaluate adds the checkpoint's metrics at its step, one curve per sampling protocol
    evaluate_run(full.run_dir(), sampler="euler", steps=2, n=16, metrics=("fid",), trajectory_n=0)
    fid = [tag for tag in _events(full.run_dir()).Tags()["scalars"] if tag.startswith("eval/fid/")]
    assert fid == ["eval/fid/euler-nfe2-cfg1-emaraw-n16"]
    assert [e.step for e in _events(full.run_dir()).Scalars(fid[0])] == [STEPS]


def test_tb_off_writes_nothing_and_changes_no_number(tmp_path):
    on, off = _cfg(tmp_path, "on"), _cfg(tmp_path, "off", tb=False)
    assert on.run_id() == off.run_id()
    a = train(on, progress=False, on_checkpoint=grid_hook(on.run_dir()))
    b = train(off, progress=False, on_checkpoint=grid_hook(off.run_dir()))
    assert (on.run_dir() / TB_DIR).is_dir() and not (off.run_dir() / TB_DIR).exists()
    assert a.record["history"] == b.record["history"]
    for x, y in zip(a.model.state_dict().values(), b.model.state_dict().values()):
        assert torch.equal(x, y)


def test_a_checkpoint_grid_leaves_the_global_rng_as_it_was(tmp_path):
    """Dropout in training draws from the global generator: drawing a grid must not move it."""
    cfg = cfg_for(tmp_path, steps=4, checkpoint_every=4)
    train(cfg, progress=False)
    log = TrainLog(cfg.run_dir())
    before = torch.get_rng_state()
    checkpoint_grid(cfg.run_dir(), 4, log)
    log.close()
    assert torch.equal(before, torch.get_rng_state())
    assert [e.step for e in _events(cfg.run_dir()).Images("samples")] == [4]


def test_evaluate_keeps_its_rows_when_the_events_cannot_be_written(tmp_path, capsys):
    cfg = cfg_for(tmp_path, steps=4, checkpoint_every=4)
    train(cfg, progress=False)
    tb = cfg.run_dir() / TB_DIR
    shutil.rmtree(tb)
    tb.write_text("a file where the events folder goes")
    rows, _ = evaluate_run(cfg.run_dir(), sampler="euler", steps=2, n=16, metrics=("fid",), trajectory_n=0)
    assert [r["metric"] for r in rows][0] == "fid"
    assert "no TensorBoard events written" in capsys.readouterr().err and tb.is_file()
