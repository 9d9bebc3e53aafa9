"""Plugins (issue 27): a user's file registers a path; --plugin loads it, `train` records it, a sweep's jobs
(other processes) load it from the spec, and the run id follows the plugin's code."""
from __future__ import annotations

import hashlib
import json

import pytest

from hdfm_bench.cli import main
from hdfm_bench.core import plugins
from hdfm_bench.core.config import RunConfig, RunConfigError
from hdfm_bench.evaluation.store import ResultStore
from hdfm_bench.methods import PATHS
from tests.sweeps.test_sweeps import write_spec

TWIN = '''
import dataclasses
from hdfm_bench import register_path
from hdfm_bench.methods.paths.noise_fm import NoiseFM


@register_path
@dataclasses.dataclass(frozen=True)
class Twin(NoiseFM):
    """noise_fm under another name: a path that lives outside the package."""

    name = "{name}"
    summary = "a plugin's copy of noise_fm"
'''


def _plugin(folder, name: str):
    path = folder / f"{name}.py"
    path.write_text(TWIN.format(name=name))
    return path


def test_a_plugin_file_registers_once_and_is_recorded_by_its_code(tmp_path):
    path = _plugin(tmp_path, "plugin_once")
    assert "plugin_once" not in PATHS
    module = plugins.load(str(path))
    assert plugins.load(str(path)) is module and PATHS.origin("plugin_once") == module.__name__
    rec = plugins.record(str(path))
    assert rec["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest() and rec["module"] == "plugin_once.py"


def test_the_run_id_changes_when_the_plugin_code_changes_not_where_it_lies(tmp_path):
    path = _plugin(tmp_path, "plugin_ids")
    cfg = RunConfig(task="digits", path="plugin_ids", plugins=(str(path),))
    assert cfg.plugins == (str(path.resolve()),)
    first = cfg.run_id()
    (tmp_path / "elsewhere").mkdir()
    moved = tmp_path / "elsewhere" / "plugin_ids.py"
    moved.write_text(path.read_text())
    assert plugins.identity([str(moved)]) == plugins.identity([str(path)])  # what the run id holds
    path.write_text(path.read_text() + "\n# a change\n")
    assert cfg.run_id() != first
    assert RunConfig(task="digits").run_id() == RunConfig(task="digits", plugins=()).run_id()  # old ids hold


def test_bad_plugins_are_one_line_naming_them(tmp_path):
    (tmp_path / "broken.py").write_text("import no_such_module_anywhere\n")
    (tmp_path / "dup.py").write_text(TWIN.format(name="noise_fm"))
    with pytest.raises(plugins.PluginError, match=r"plugin '.*broken\.py' failed to load: ModuleNotFoundError"):
        plugins.load(str(tmp_path / "broken.py"))
    with pytest.raises(plugins.PluginError, match=r"dup\.py.*noise_fm"):
        plugins.load(str(tmp_path / "dup.py"))
    with pytest.raises(RunConfigError, match="no_such_plugin_module"):
        RunConfig(plugins=("no_such_plugin_module",))


def test_train_records_the_plugin_and_a_local_sweep_loads_it_in_its_jobs(tmp_path, capsys):
    path = _plugin(tmp_path, "plugin_sweep")
    runs = tmp_path / "direct"
    assert main(["train", "--task", "digits", "--path", "plugin_sweep", "--steps", "2", "--batch-size", "16",
                 "--backbone-params", "patch=2", "--backbone-params", "width=32", "--backbone-params", "depth=1",
                 "--out-dir", str(runs), "--no-progress", "--plugin", str(path)]) == 0
    (run,) = runs.iterdir()
    rec = json.loads((run / "run.json").read_text())
    assert rec["config"]["plugins"] == [str(path.resolve())]
    assert rec["plugins"][0]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    # the sweep's jobs are other processes: they load the plugin from the spec (a path relative to it)
    spec = write_spec(tmp_path, grid='path = ["plugin_sweep", "noise_fm"]', steps=4, evals="steps = [2]",
                      extra=f'plugins = ["{path.name}"]')
    assert main(["sweep", str(spec), "--executor", "local", "--timeout", "300"]) == 0
    rows = ResultStore(tmp_path / "sweep" / "results.jsonl").rows()
    assert {r["path"] for r in rows if r["metric"] == "fid"} == {"plugin_sweep", "noise_fm"}
    assert main(["table", "--store", str(tmp_path / "sweep" / "results.jsonl"), "--metric", "fid"]) == 0
    assert "plugin_sweep" in capsys.readouterr().out


def test_installed_plugins_can_be_switched_off(monkeypatch):
    """HDFM_BENCH_NO_PLUGINS: the way around a broken installed plugin that would stop every command."""
    monkeypatch.setattr(plugins, "_ENTRY_POINTS_LOADED", False)
    monkeypatch.setenv(plugins.NO_PLUGINS_ENV, "1")
    assert plugins.load_entry_points() == []
