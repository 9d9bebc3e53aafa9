"""bf16 autocast on a CPU and torch.compile of the backbone: the losses stay those of the eager fp32 run."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hdfm_bench.training import checkpoint, train
from tests.training.helpers import TINY_VIT, cfg_for


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
def test_compiled_backbone_trains_like_the_eager_one_and_prints_no_cuda_warning(tmp_path):
    """The compiled run trains in a fresh process with a CUDA toolkit on the machine (CUDA_HOME set) but
    no GPU: inductor's import of torch.utils.cpp_extension logged 'No CUDA runtime is found' into every
    CPU run's progress bar. One compile serves both checks."""
    # one block: what is compiled is the same kind of graph, and tracing it costs what its size costs
    kw = {"steps": 3, "log_every": 1, "checkpoint_every": 3, "backbone_params": {**TINY_VIT, "depth": 1}}
    eager_cfg = cfg_for(tmp_path / "eager", **kw)
    assert cfg_for(tmp_path / "compiled", compile=True, **kw).run_id() == eager_cfg.run_id()  # how, not which
    code = ("import json, sys; from pathlib import Path; from hdfm_bench.training import train; "
            "from tests.training.helpers import cfg_for; "
            f"res = train(cfg_for(Path(sys.argv[1]), compile=True, **{kw!r}), progress=False); "
            "print(json.dumps([[float(l) for _, l in res.record['history']], str(res.run_dir)]))")
    # inductor's own cache dir (warm after the first run on a machine): the warning came with or without a hit
    env = {**os.environ, "CUDA_HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "compiled")], capture_output=True, text=True,
                          env=env, timeout=300, cwd=Path(__file__).parents[2])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "No CUDA runtime" not in proc.stderr, proc.stderr[-2000:]
    compiled_losses, compiled_dir = json.loads(proc.stdout.strip().splitlines()[-1])
    eager = train(eager_cfg, progress=False)
    assert compiled_losses == pytest.approx(_losses(eager), rel=1e-4)
    a = checkpoint.load(eager.run_dir / "checkpoint.pt")["model"]
    b = checkpoint.load(Path(compiled_dir) / "checkpoint.pt")["model"]
    assert a.keys() == b.keys()  # the checkpoint holds the plain module's names, not the compiled wrapper's
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-4, rtol=1e-3)
