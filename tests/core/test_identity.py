"""Identities on disk stay what they were: run ids of the committed results, evaluation keys, the
hashing and override rules every module shares."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hdfm_bench.core.config import RunConfig
from hdfm_bench.core.hashing import RUN_ID_DIGITS, canonical_json, short_hash
from hdfm_bench.core.overrides import OverrideError, apply_override, non_finite, parse_assignments, parse_value
from hdfm_bench.evaluation.store import ResultStore
from hdfm_bench.experiments.suite import configs
from hdfm_bench.specs import SPECS_DIR
from hdfm_bench.sweeps.spec import Sweep

RESULTS = Path(__file__).resolve().parents[2] / "results"


def _stored_run_ids(store: Path) -> set[str]:
    return {r["run_id"] for r in ResultStore(store).rows()}


def test_the_default_suite_finds_the_runs_of_its_committed_results():
    committed = _stored_run_ids(RESULTS / "suite" / "results.jsonl")
    assert {c.run_id() for c in configs().values()} == committed


def test_the_ablation_spec_finds_the_runs_of_its_committed_results(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # out_dir resolves against the working directory; run ids do not
    sweep = Sweep.load(SPECS_DIR / "ablation-mnist.toml", check=False)
    assert {r.run_id for r in sweep.runs} == _stored_run_ids(RESULTS / "ablation" / "results.jsonl")


def test_evaluation_keys_of_unchanged_settings_are_the_committed_ones(tmp_path, monkeypatch):
    """Eval keys hash (run, step, setting): settings whose resolution did not change keep their keys,
    so a re-run of the ablation skips them (noise FM at its recipe's explicit step budgets)."""
    monkeypatch.chdir(tmp_path)
    sweep = Sweep.load(SPECS_DIR / "ablation-mnist.toml", check=False)
    committed = {r["eval_key"] for r in ResultStore(RESULTS / "ablation" / "results.jsonl").rows()}
    keys = {k for run in sweep.runs if run.config.path == "noise_fm" for k in run.eval_keys(False)}
    assert len(keys) == 27 and keys <= committed


def test_canonical_json_ignores_key_order_and_numpy_scalars():
    a = {"b": [1, 2.5, (3, 4)], "a": {"y": np.float64(0.5), "x": np.int64(2)}}
    b = {"a": {"x": 2, "y": 0.5}, "b": [1, 2.5, [3, 4]]}
    assert canonical_json(a) == canonical_json(b) == '{"a": {"x": 2, "y": 0.5}, "b": [1, 2.5, [3, 4]]}'
    assert short_hash(a) == short_hash(b) and len(short_hash(a)) == 16 and len(short_hash(a, 10)) == 10


def test_run_id_is_the_short_hash_of_the_identity_fields():
    cfg = RunConfig(path="hdfm", steps=5)
    skip = {*RunConfig.RUN_ID_EXCLUDES, *RunConfig.RUN_ID_LATER}
    d = {k: v for k, v in cfg.to_dict().items() if k not in skip}
    assert cfg.run_id() == f"mnist-hdfm-default-{short_hash(d, RUN_ID_DIGITS)}"
    assert RunConfig(path="hdfm", steps=5, backend="jax").run_id() != cfg.run_id()
    assert RunConfig(path="hdfm", steps=5, bf16_on_cpu=True).run_id() != cfg.run_id()  # changes the numbers
    # how the same numbers are computed does not name a different run
    assert RunConfig(path="hdfm", steps=5, compile=True, workers=0, log_every=1).run_id() == cfg.run_id()


@pytest.mark.parametrize("raw,value", [("3", 3), ("2.5e-3", 0.0025), ("true", True), ("[0.9, 0.99]", [0.9, 0.99]),
                                       ('"a b"', "a b"), ("mnist", "mnist"), ("nan", float("nan"))])
def test_values_follow_toml(raw, value):
    got = parse_value(raw)
    assert (got != got and value != value) or (got == value and type(got) is type(value))


def test_assignments_and_their_errors():
    d: dict = {"path_params": {"a": 1.0}}
    apply_override(d, "path_params.t_min=0.01")
    apply_override(d, "steps=4")
    assert d == {"path_params": {"a": 1.0, "t_min": 0.01}, "steps": 4}
    assert parse_assignments(["beta=0.5", "clip=true"], "--sampler-param") == {"beta": 0.5, "clip": True}
    with pytest.raises(OverrideError, match="--sampler-param 'foo' must look like key=value"):
        parse_assignments(["foo"], "--sampler-param")
    with pytest.raises(OverrideError, match="'steps' is not a table"):
        apply_override(d, "steps.x=1")
    with pytest.raises(OverrideError, match="empty key"):
        apply_override(d, "=3")


def test_non_finite_numbers_are_found_anywhere():
    assert non_finite({"a": [1.0, {"b": float("inf")}]}) == "a[1].b"
    assert non_finite({"a": [1.0, 2]}) is None


def test_committed_rows_carry_the_store_format():
    line = (RESULTS / "suite" / "results.jsonl").read_text().splitlines()[0]
    assert json.loads(line)["v"] == 1
