"""``hdfm-bench diagnose`` (docs/methods.md §15) on trained runs: its numbers against the path's own loss
and the floor's formula, its levels, its files."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hdfm_bench.evaluation.diagnose import diagnose_run, time_grid
from hdfm_bench.methods import diagnostics, get_path
from hdfm_bench.tasks import get_task
from hdfm_bench.training import train
from hdfm_bench.training.build import load_run
from tests.helpers import assert_png
from tests.training.helpers import cfg_for


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    return {name: train(cfg_for(out, name, steps=15, **kw), progress=False).run_dir
            for name, kw in (("ihdm", {}), ("blurring_diffusion", {"target": "eps", "loss": "eps"}))}


def test_levels_are_the_trained_ones_and_continuous_paths_get_cell_midpoints():
    ihdm = get_path("ihdm", K=100)
    ts = time_grid(ihdm, 5)
    assert [round(100 * (1 - t)) for t in ts] == [99, 74, 50, 26, 1]  # levels 1..K-1, most blurred first
    assert time_grid(get_path("noise_fm"), 4) == [0.125, 0.375, 0.625, 0.875]


@pytest.mark.parametrize("name", ["ihdm", "blurring_diffusion"])
def test_loss_is_the_paths_own_loss_and_the_floor_its_formula(runs, name):
    d = diagnose_run(runs[name], n=48, points=3, ema=None, progress=False)
    cfg, model, _ = load_run(runs[name])
    task, path = get_task(cfg.task, **cfg.task_params), get_path(cfg.path, **cfg.path_params)
    x, y = (v[:48] for v in task.load("test"))
    eps = torch.randn(x.shape, generator=torch.Generator().manual_seed(0)).double()
    train_x = task.load("train")[0][:10_000].double()
    mean, cov = diagnostics.basis_moments(path.to_basis(train_x).numpy())
    target = cfg.target or path.default_target
    assert d["target"] == target and d["n"] == 48 and d["covariance"] == "full"
    assert d["probe"] == ("prev_mean" if name == "ihdm" else "eps")
    for p in d["points"]:
        tt = torch.full((48,), p["t"], dtype=torch.float64)
        z = path.corrupt(x.double(), eps, tt)
        with torch.no_grad():
            raw = model(z.float(), tt.float(), y).double()
        own = path.loss(raw, target, target, x.double(), eps, tt, z, norm="l2")
        assert p["loss"] == pytest.approx(float(own.mean()), rel=1e-6)
        assert p["floor"] == pytest.approx(diagnostics.linear_floor(path, target, p["t"], mean, cov), rel=1e-9)
        assert set(p["pass_through"]) == {"0.5-1", "0.25-0.5", "0.125-0.25", "0.0625-0.125"}  # 8x8 digits
        assert all(np.isfinite(v) for v in p["pass_through"].values())


def test_the_command_writes_json_and_figure_and_prints_the_table(runs, tmp_path, capsys):
    from hdfm_bench.cli import main

    out = tmp_path / "diag"
    assert main(["diagnose", str(runs["ihdm"]), "-n", "32", "--points", "4", "--out", str(out)]) == 0
    d = json.loads((out / "diagnose.json").read_text())
    assert len(d["points"]) == 4 and d["ema"] == 0.99  # the run's slowest EMA by default
    assert_png(out / "diagnose.png")
    text = capsys.readouterr().out
    assert "loss/floor" in text and "c@0.5-1" in text and str(out / "diagnose.json") in text
