"""Streaming, sharded evaluation: the same rows whatever the split, shard files checked before any
merge, an interrupted shard recomputed alone, FID-only evaluations keeping no feature matrix."""
from __future__ import annotations

import shutil

import pytest
import torch

from hdfm_bench.evaluation import evaluate as ev_mod
from hdfm_bench.evaluation.evaluate import (
    Evaluation,
    evaluate_run,
    evaluate_shard,
    load_shards,
    merge_shards,
    shard_file,
)
from hdfm_bench.evaluation.metrics.errors import MetricError
from hdfm_bench.evaluation.protocol import EvalSettings
from hdfm_bench.methods import ConfigError
from hdfm_bench.training import train
from tests.training.helpers import cfg_for


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return train(cfg_for(tmp_path_factory.mktemp("runs"), "hdfm", steps=15), progress=False).run_dir


SETTINGS = dict(n=48, steps=3, cfg_scale=2.0, ema=0.99, kid_subset_size=20)


def _values(rows):
    return {(r["metric"], r["protocol"].get("t")): r["value"] for r in rows}


def test_sharded_rows_equal_unsharded_rows(run, tmp_path):
    whole, info = evaluate_run(run, EvalSettings(**SETTINGS, batch_size=48), trajectory_n=20)
    split, _ = evaluate_run(run, EvalSettings(**SETTINGS, batch_size=5, shards=3), trajectory_n=20,
                            shard_dir=tmp_path / "shards")
    a, b = _values(whole), _values(split)
    assert a.keys() == b.keys() and len(a) >= 15
    for k in a:  # samples are bit-identical; features of different extractor batches agree to float64 noise
        assert b[k] == pytest.approx(a[k], rel=1e-9, abs=1e-12), k
    p = split[0]["protocol"]
    assert (p["shards"], p["n_gen"], p["image_seeds"], p["block"]) == (3, 48, "0-47", 16)
    assert whole[0]["protocol"]["shards"] == 1
    traj = [r for r in split if r["metric"] == "r_hf_trajectory"]
    assert {r["protocol"]["n_gen"] for r in traj} == {20}  # the first 20 images' states, across shards
    assert info["key"] == EvalSettings(**SETTINGS, shards=3).key(whole[0]["run_id"], 15)  # shards: not identity


def test_an_interrupted_evaluation_recomputes_only_its_missing_shard(run, tmp_path, monkeypatch):
    s = EvalSettings(**SETTINGS, shards=3)
    ev = Evaluation(run, s)
    folder = tmp_path / "shards"
    for k in (0, 2):
        evaluate_shard(ev, k, folder)
    measured = []
    real = ev_mod.Evaluation.measure

    def counting(self, start, stop, **kw):
        measured.append((start, stop))
        return real(self, start, stop, **kw)

    monkeypatch.setattr(ev_mod.Evaluation, "measure", counting)
    rows, _ = evaluate_run(run, s, shard_dir=folder)
    assert measured == [(16, 32)] and len(rows) > 10


def test_a_shard_set_is_checked_before_any_merge(run, tmp_path):
    s = EvalSettings(**SETTINGS, shards=3)
    ev = Evaluation(run, s)
    folder = tmp_path / "shards"
    for k in (0, 1):
        evaluate_shard(ev, k, folder)
    with pytest.raises(MetricError, match=r"shard\(s\) 2 of 3 missing"):
        merge_shards(run, s, folder)
    evaluate_shard(ev, 2, folder)
    dup = folder / ev.key / "shard-0001-of-0003 (copy).pt"
    shutil.copy(shard_file(folder, ev.key, 1, 3), dup)
    with pytest.raises(MetricError, match="shard 1 of 3 appears twice"):
        load_shards(ev, folder)
    dup.unlink()
    other = Evaluation(run, EvalSettings(**{**SETTINGS, "seed": 1}, shards=3))  # another evaluation's shard
    foreign = shard_file(folder, other.key, 0, 3)
    evaluate_shard(other, 0, folder)
    shutil.copy(foreign, folder / ev.key / "shard-0003-of-0003.pt")
    with pytest.raises(MetricError, match="belongs to another evaluation"):
        load_shards(ev, folder)
    (folder / ev.key / "shard-0003-of-0003.pt").unlink()
    shard_file(folder, ev.key, 2, 3).write_bytes(b"truncated")
    with pytest.raises(MetricError, match="cannot read shard file"):
        load_shards(ev, folder)


def test_n_must_divide_into_the_shards():
    with pytest.raises(ConfigError, match="n = 50 is not divisible into 3 shards"):
        EvalSettings(n=50, shards=3)
    with pytest.raises(ConfigError, match="shards must be an integer >= 1"):
        EvalSettings(n=50, shards=0)


def test_fid_only_keeps_running_statistics_not_features(run):
    ev = Evaluation(run, EvalSettings(**SETTINGS, metrics=("fid",)))
    part = ev.measure(0, 48)
    assert not part.features.keep and part.features.rows == [] and part.features.outer.shape == (128, 128)
    rows = ev.rows([part])
    full = Evaluation(run, EvalSettings(**SETTINGS)).rows([Evaluation(run, EvalSettings(**SETTINGS)).measure(0, 48)])
    fid = {r["metric"]: r["value"] for r in rows}
    assert set(fid) >= {"fid", "r_hf"} and "kid" not in fid and "precision" not in fid
    assert fid["fid"] == pytest.approx(next(r["value"] for r in full if r["metric"] == "fid"), rel=1e-7)
    assert rows[0]["protocol"]["metrics"] == ["fid"]


def test_the_stream_holds_features_not_images(run, monkeypatch):
    """No tensor the size of all n images is ever built: every batch the extractor sees is one block."""
    sizes = []
    ev = Evaluation(run, EvalSettings(**{**SETTINGS, "n": 64}, batch_size=16))
    real = ev.extractor.features
    monkeypatch.setattr(ev.extractor, "features", lambda x, *a, **k: (sizes.append(len(x)), real(x, *a, **k))[1])
    part = ev.measure(0, 64)
    assert sizes == [16, 16, 16, 16] and part.features.n == 64 and torch.is_tensor(part.features.matrix)
