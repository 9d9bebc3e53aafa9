"""The hdfm-bench command: help everywhere, the registry listing, one-line errors, train → sample end to end."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hdfm_bench import cli

COMMANDS = ["list", "gallery", "perf", "train", "sample", "evaluate", "table", "plot", "run"]


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "hdfm_bench.cli", *args], capture_output=True, text=True)


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_everywhere(command, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"] if command is None else [command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: hdfm-bench" in out
    if command is None:
        assert all(c in out for c in COMMANDS)


def test_list_shows_the_registry(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "PATHS (6)" in out and "TARGETS (4)" in out and "SAMPLERS (7)" in out
    assert "a = 0.5" in out and "target_laplacian = 1.0" in out and "K = 200" in out
    assert cli.main(["list", "--json"]) == 0
    reg = json.loads(capsys.readouterr().out)
    assert len(reg["paths"]) >= 6 and len(reg["targets"]) >= 3 and len(reg["samplers"]) >= 6
    assert reg["samplers"]["ihdm_delta"]["paths"] == ["ihdm"]
    assert reg["paths"]["hdfm"]["default"] == {"target": "x", "loss": "v", "norm": "l2", "sampler": "hdfm_exact",
                                               "steps": 20}


def test_bad_input_is_one_line_and_nonzero(tmp_path):
    out = tmp_path / "g.png"
    res = run_cli("gallery", "--out", str(out), "--times", "0,1.5")
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == ["hdfm-bench: error: gallery times must lie in [0, 1]; got [0.0, 1.5]"]
    assert not out.exists()
    res = run_cli("perf", "--only", "nope", "--out", str(tmp_path / "p.md"))
    assert res.returncode == 2 and "unknown benchmark 'nope'" in res.stderr
    assert not (tmp_path / "p.md").exists()
    res = run_cli("frobnicate")
    assert res.returncode == 2 and "invalid choice" in res.stderr


def test_cli_train_and_sample_end_to_end(tmp_path):
    common = [sys.executable, "-m", "hdfm_bench.cli"]
    res = subprocess.run(common + ["train", "--task", "digits", "--path", "noise_fm", "--steps", "3",
                                   "--batch-size", "16", "--backbone-params", "patch=2", "--backbone-params",
                                   "width=32", "--backbone-params", "depth=1", "--out-dir", str(tmp_path),
                                   "--no-progress"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    run_dir = next(tmp_path.iterdir())
    res = subprocess.run(common + ["sample", str(run_dir), "--steps", "2", "-n", "10", "--cfg-scale", "1.5"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "NFE counted" in res.stdout and list((run_dir / "samples").glob("*.png"))
    res = subprocess.run(common + ["train", "--path", "ihdm", "--target", "v", "--task", "digits",
                                   "--out-dir", str(tmp_path)], capture_output=True, text=True)
    assert res.returncode == 2 and "cannot use target 'v'" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
