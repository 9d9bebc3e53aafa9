"""torchrun (issue 27): `train` and `evaluate` honour its environment. On CPU with gloo, 2 processes end
with the weights of 1 (DistributedDataParallel over the same global batch) and a 2-rank sharded evaluation
gives the single-process numbers."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from hdfm_bench.evaluation.store import ResultStore

TRAIN = ["train", "--task", "digits", "--path", "noise_fm", "--steps", "4", "--batch-size", "16",
         "--backbone-params", "patch=2", "--backbone-params", "width=32", "--backbone-params", "depth=1",
         "--no-progress", "--threads", "1"]
EVAL = ["--steps", "2", "-n", "20", "--seed", "2", "--threads", "1"]


def _cli(args: list[str], processes: int = 1) -> None:
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)] \
        if processes > 1 else [sys.executable]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([*launch, "-m", "hdfm_bench.cli", *args], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("torchrun")
    _cli([*TRAIN, "--out-dir", str(root / "one")])
    _cli([*TRAIN, "--out-dir", str(root / "two")], processes=2)
    (one,) = (root / "one").iterdir()
    (two,) = (root / "two").iterdir()
    return root, one, two


def test_two_torchrun_processes_train_the_weights_of_one(trained):
    _, one, two = trained
    assert one.name == two.name  # the same run
    assert json.loads((two / "run.json").read_text())["budget"]["processes"] == 2  # torchrun's group was joined
    a = torch.load(one / "checkpoint.pt", weights_only=True)
    b = torch.load(two / "checkpoint.pt", weights_only=True)
    assert a["step"] == b["step"] == 4
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], atol=1e-5, rtol=0, msg=k)


def test_a_two_rank_evaluation_gives_the_single_process_numbers(trained):
    root, one, _ = trained
    _cli(["evaluate", str(one), *EVAL, "--store", str(root / "single.jsonl")])
    _cli(["evaluate", str(one), *EVAL, "--shards", "2", "--shard-dir", str(root / "shards"),
          "--store", str(root / "ranks.jsonl")], processes=2)
    single = {r["metric"]: r["value"] for r in ResultStore(root / "single.jsonl").rows()}
    ranks = ResultStore(root / "ranks.jsonl").rows()
    assert len({r["protocol"]["shards"] for r in ranks}) == 1 and ranks[0]["protocol"]["shards"] == 2
    for r in ranks:
        if r["metric"] in ("fid", "kid", "class_accuracy", "r_hf"):
            assert r["value"] == pytest.approx(single[r["metric"]], rel=1e-6, abs=1e-12), r["metric"]
