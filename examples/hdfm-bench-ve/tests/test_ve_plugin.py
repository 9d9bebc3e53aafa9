"""The example plugin's own tests: its path against its closed form and a finite difference, its sampler
against an oracle, and its registration through the installed entry point."""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import math
import subprocess
import sys
from pathlib import Path

import hdfm_bench_ve
import pytest
import torch

from hdfm_bench.methods import get_path, get_sampler


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(0)
    return torch.rand(4, 1, 8, 8, generator=g, dtype=torch.float64) * 2 - 1, \
        torch.randn(4, 1, 8, 8, generator=g, dtype=torch.float64)


def test_the_path_is_x_plus_sigma_eps_with_a_log_linear_sigma(data):
    x, eps = data
    path = get_path("ve", sigma_max=10.0, sigma_min=0.02)
    t = torch.tensor([0.0, 0.25, 0.5, 1.0], dtype=torch.float64)
    sig = 10.0 * (0.02 / 10.0) ** t
    torch.testing.assert_close(path.corrupt(x, eps, t), x + sig[:, None, None, None] * eps)
    h = 1e-6  # dz/dt against a central difference
    fd = (path.corrupt(x, eps, t.clamp(h, 1 - h) + h) - path.corrupt(x, eps, t.clamp(h, 1 - h) - h)) / (2 * h)
    torch.testing.assert_close(path.velocity(x, eps, t.clamp(h, 1 - h)), fd, rtol=1e-6, atol=1e-6)
    assert path.sigma_at(0.0) == pytest.approx(10.0) and path.sigma_at(1.0) == pytest.approx(0.02)


def test_ddim_with_an_oracle_keeps_the_noise_direction_exactly(data):
    """x̂ = x at every step: z_1 − x = σ_min/σ_max (z_0 − x), whatever the number of steps."""
    x, eps = data
    path = get_path("ve")
    z0 = path.prior(eps)
    for steps in (1, 7):
        out = get_sampler("ve_ddim", steps=steps).sample(path, lambda z, t: x, z0, target="x")
        torch.testing.assert_close(out.samples - x, (path.sigma_min / path.sigma_max) * (z0 - x))
        assert out.nfe == steps
    with pytest.raises(ValueError, match="variance-exploding"):
        get_sampler("ve_ddim").sample(get_path("noise_fm"), lambda z, t: x, z0, target="x")


def test_hdfm_bench_finds_the_installed_entry_point():
    eps = importlib.metadata.entry_points(group="hdfm_bench.plugins")
    assert "hdfm_bench_ve" in {ep.module for ep in eps}
    listed = subprocess.run([sys.executable, "-m", "hdfm_bench.cli", "list"], capture_output=True, text=True)
    assert listed.returncode == 0 and "ve_ddim" in listed.stdout and "variance exploding" in listed.stdout
    assert hdfm_bench_ve.VarianceExploding.name == "ve" and math.isfinite(get_path("ve").log_ratio)


def test_train_and_evaluate_a_ve_run_from_the_command_line(tmp_path):
    """Fresh processes: the path and its sampler come from the installed entry point alone."""
    cli = [sys.executable, "-m", "hdfm_bench.cli"]
    train = [*cli, "train", "--task", "digits", "--path", "ve", "--target", "x", "--loss", "x", "--steps", "3",
             "--batch-size", "16", "--backbone-params", "patch=2", "--backbone-params", "width=32",
             "--backbone-params", "depth=1", "--out-dir", str(tmp_path), "--no-progress", "--threads", "1"]
    assert subprocess.run(train, capture_output=True, text=True).returncode == 0
    (run,) = tmp_path.iterdir()
    done = subprocess.run([*cli, "evaluate", str(run), "-n", "10", "--steps", "2", "--threads", "1", "--store",
                           str(tmp_path / "store.jsonl")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ve_ddim 2 steps / 2 NFE" in done.stdout
    # the run records the package that gave it its path, and its id and rows carry that code's hash
    source = Path(hdfm_bench_ve.path.__file__)
    rec = json.loads((run / "run.json").read_text())
    (plugin,) = rec["plugins"]
    assert plugin["module"] == "hdfm_bench_ve.path" and plugin["version"] == "hdfm-bench-ve 0.1.0"
    assert plugin["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    row = json.loads((tmp_path / "store.jsonl").read_text().splitlines()[0])["rows"][0]
    assert row["protocol"]["plugins"] == [f"hdfm_bench_ve.path@{plugin['sha256'][:16]}"]
