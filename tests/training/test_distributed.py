"""Data parallelism with DistributedDataParallel (gloo on CPU): 2 processes end with the weights of 1
process on the same global batch, resume exactly after a kill, and fail (not hang) when a rank dies."""
from __future__ import annotations

import json
import os
import time
import traceback

import pytest
import torch
import torch.multiprocessing as mp

from hdfm_bench.training import checkpoint, train
from hdfm_bench.training.distributed import TIMEOUT_ENV, check_divisible
from tests.training.helpers import TINY_VIT, cfg_for


def _worker(rank, world, init, cfg_kw, out, stop_at, timeout):
    """One process of the group: train, then report what happened in ``out.<rank>.json``."""
    os.environ[TIMEOUT_ENV] = str(timeout)
    torch.set_num_threads(1)
    import torch.distributed as dist

    from hdfm_bench.training.distributed import start_group

    start_group(rank, world, init_method=f"file://{init}", backend="gloo")
    report = {"rank": rank}
    t0 = time.perf_counter()
    try:
        train(cfg_for(**cfg_kw), progress=False, stop_at=stop_at.get(rank))
        report["outcome"] = "done"
    except Exception as err:  # reported to the test, which asserts on it
        report.update(outcome=type(err).__name__, message=str(err), trace=traceback.format_exc()[-2000:])
    report["seconds"] = time.perf_counter() - t0
    with open(f"{out}.{rank}.json", "w") as fh:
        json.dump(report, fh)
    if report["outcome"] == "done":
        dist.destroy_process_group()
    os._exit(0)  # no teardown of a broken group


def _group(tmp_path, name, cfg_kw, world=2, stop_at=None, timeout=60):
    init = tmp_path / f"{name}.init"
    init.unlink(missing_ok=True)
    out = tmp_path / name
    mp.start_processes(_worker, args=(world, init, cfg_kw, out, stop_at or {}, timeout), nprocs=world,
                       start_method="spawn", join=True)
    return [json.loads((tmp_path / f"{name}.{r}.json").read_text()) for r in range(world)]


def _state(cfg):
    return checkpoint.load(cfg.run_dir() / "checkpoint.pt")


def _close(a, b, atol):
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], atol=atol, rtol=0, msg=k)
    for d in a["ema"]:
        for k in a["ema"][d]:
            torch.testing.assert_close(a["ema"][d][k], b["ema"][d][k], atol=atol, rtol=0)


# LayerSync's auxiliary loss and label dropout ride along: both must stay correct under DDP
KW = dict(path="hdfm", target="x", loss="v", steps=12, batch_size=16, checkpoint_every=4, log_every=2,
          backbone_params={**TINY_VIT, "layersync": [0, 1]}, label_dropout=0.25)


def test_two_processes_train_the_weights_of_one_and_resume_exactly(tmp_path):
    one = cfg_for(tmp_path / "one", **KW)
    train(one, progress=False)
    reports = _group(tmp_path, "two", dict(tmp_path=tmp_path / "two", **KW))
    assert [r["outcome"] for r in reports] == ["done", "done"], reports
    two = cfg_for(tmp_path / "two", **KW)
    _close(_state(one), _state(two), atol=1e-5)
    rec = json.loads((two.run_dir() / "run.json").read_text())
    assert rec["status"] == "done" and rec["budget"]["processes"] == 2
    one_rec = json.loads((one.run_dir() / "run.json").read_text())
    assert [h[0] for h in rec["history"]] == list(range(1, 13))
    for (_, a), (_, b) in zip(rec["history"], one_rec["history"]):  # the logged loss is the global-batch mean
        assert a == pytest.approx(b, rel=1e-4)

    # killed on both ranks after the step-8 checkpoint, then the same 2-process command again
    reports = _group(tmp_path, "cut", dict(tmp_path=tmp_path / "cut", **KW), stop_at={0: 10, 1: 10})
    assert [r["outcome"] for r in reports] == ["Interrupted", "Interrupted"]
    cut = cfg_for(tmp_path / "cut", **KW)
    assert _state(cut)["step"] == 8
    reports = _group(tmp_path, "resume", dict(tmp_path=tmp_path / "cut", **KW))
    assert [r["outcome"] for r in reports] == ["done", "done"], reports
    _close(_state(two), _state(cut), atol=0)  # bit-identical to the uninterrupted 2-process run


def test_a_dead_rank_makes_the_others_fail_not_hang(tmp_path):
    kw = dict(KW, steps=40, checkpoint_every=40)
    reports = _group(tmp_path, "dead", dict(tmp_path=tmp_path / "dead", **kw), stop_at={1: 5}, timeout=30)
    assert reports[1]["outcome"] == "Interrupted"
    assert reports[0]["outcome"] == "RankFailure", reports[0]
    msg = reports[0]["message"]
    assert "\n" not in msg and "rank 0 of 2" in msg and "another process has probably died" in msg
    assert reports[0]["seconds"] < 60


def test_world_size_must_divide_the_batch():
    check_divisible(64, 4)
    with pytest.raises(ValueError, match="batch_size 30 is not divisible by the 4 data-parallel processes"):
        check_divisible(30, 4)
