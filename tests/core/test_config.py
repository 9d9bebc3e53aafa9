"""RunConfig: loading, overrides, validation, identity (run ids)."""
from __future__ import annotations

import pytest

from hdfm_bench.core.config import RunConfig, RunConfigError


def test_config_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('path = "hdfm"\nstepz = 3\n')
    with pytest.raises(RunConfigError, match="unknown key 'stepz'"):
        RunConfig.load(bad)
    bad.write_text('steps = "many"\n')
    with pytest.raises(RunConfigError, match="'steps' expects int"):
        RunConfig.load(bad)
    bad.write_text("steps = [\n")
    with pytest.raises(RunConfigError, match="invalid TOML"):
        RunConfig.load(bad)
    with pytest.raises(RunConfigError, match="config file not found"):
        RunConfig.load(tmp_path / "missing.toml")
    with pytest.raises(RunConfigError, match="lr must be > 0"):
        RunConfig.load(None, ["lr=0"])
    good = tmp_path / "good.toml"
    good.write_text('path = "hdfm"\nsteps = 5\n[path_params]\na = 0.25\n')
    c = RunConfig.load(good, ["path_params.t_min=0.001", "steps=6"])
    assert (c.path, c.steps, c.path_params) == ("hdfm", 6, {"a": 0.25, "t_min": 0.001})
    assert c.run_id() != RunConfig.load(good).run_id()
    assert c.run_id() == RunConfig.load(good, ["path_params.t_min=0.001", "steps=6", "checkpoint_every=7"]).run_id()
