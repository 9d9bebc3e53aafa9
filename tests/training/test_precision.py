"""bf16 autocast on a CPU and torch.compile of the backbone: the losses stay those of the eager fp32 run."""
from __future__ import annotations

import shutil

import pytest
import torch

from hdfm_bench.training import checkpoint, train
from tests.training.helpers import cfg_for


def _losses(res) -> list[float]:
    return [loss for _, loss in res.record["history"]]


def test_bf16_autocast_runs_on_cpu_close_to_fp32(tmp_path):
    fp32 = train(cfg_for(tmp_path / "a", steps=4, log_every=1), progress=False)
    bf16_cfg = cfg_for(tmp_path / "b", steps=4, log_every=1, bf16_on_cpu=True)
    assert bf16_cfg.run_id() != fp32.record["run_id"]  # a different computation: a different run
    bf16 = train(bf16_cfg, progress=False)
    a, b = _losses(fp32), _losses(bf16)
    assert a[0] == b[0]  # the zero-initialised output layer: both start from the same exact prediction
    assert a[1:] != b[1:]  # then autocast runs the backbone in bf16 (8-bit mantissa)
    assert b == pytest.approx(a, rel=2e-2)  # same data, same draws: only rounding differs
    assert all(torch.isfinite(torch.tensor(b)))


def _compiler() -> str | None:
    return next((c for c in ("cc", "gcc", "clang") if shutil.which(c)), None)


@pytest.mark.skipif(_compiler() is None, reason="torch.compile's inductor backend needs a C compiler; none on PATH")
def test_compiled_backbone_trains_like_the_eager_one(tmp_path):
    eager_cfg = cfg_for(tmp_path / "eager", steps=3, log_every=1, checkpoint_every=3)
    compiled_cfg = cfg_for(tmp_path / "compiled", steps=3, log_every=1, checkpoint_every=3, compile=True)
    assert compiled_cfg.run_id() == eager_cfg.run_id()  # how the numbers are computed, not which numbers
    eager, compiled = train(eager_cfg, progress=False), train(compiled_cfg, progress=False)
    assert _losses(compiled) == pytest.approx(_losses(eager), rel=1e-4)
    a = checkpoint.load(eager.run_dir / "checkpoint.pt")["model"]
    b = checkpoint.load(compiled.run_dir / "checkpoint.pt")["model"]
    assert a.keys() == b.keys()  # the checkpoint holds the plain module's names, not the compiled wrapper's
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-4, rtol=1e-3)
