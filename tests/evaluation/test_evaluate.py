"""evaluate_run: every stored number carries its protocol; rows land in the store."""
from __future__ import annotations

import pytest

from hdfm_bench.evaluation.evaluate import evaluate_run
from hdfm_bench.evaluation.store import ResultStore
from hdfm_bench.training import train
from tests.training.helpers import cfg_for

PROTOCOL_FIELDS = {"task", "extractor", "extractor_hash", "n_gen", "n_ref", "reference_split", "reference_hash",
                   "resolution", "sampler", "sampler_params", "steps", "nfe", "cfg_scale", "cfg_interval", "ema",
                   "seed", "checkpoint_step", "budget"}


def test_evaluate_run_stamps_every_row(tmp_path):
    res = train(cfg_for(tmp_path, "hdfm", steps=3), progress=False)
    rows, out = evaluate_run(res.run_dir, method="hdfm-test", sampler="heun", steps=3, cfg_scale=2.0, ema=0.99,
                             n=40, seed=1, reference_split="test", kid_subset_size=20, trajectory_n=10)
    metrics = {r["metric"] for r in rows}
    assert {"fid", "kid", "precision", "recall", "class_accuracy", "r_hf", "lsd", "r_hf_trajectory"} <= metrics
    assert any(m.startswith("band_ratio@") for m in metrics)
    for r in rows:
        assert PROTOCOL_FIELDS <= set(r["protocol"]), PROTOCOL_FIELDS - set(r["protocol"])
        assert r["run_id"] == res.record["run_id"] and r["checkpoint_step"] == 3 and r["method"] == "hdfm-test"
    p = next(r["protocol"] for r in rows if r["metric"] == "fid")
    assert (p["extractor"], p["n_gen"], p["nfe"], p["cfg_scale"], p["ema"], p["seed"]) == ("domain-digits", 40, 10,
                                                                                           2.0, 0.99, 1)
    assert p["n_ref"] == 360 and p["budget"]["images_seen"] == 3 * 64
    traj = sorted(r["protocol"]["t"] for r in rows if r["metric"] == "r_hf_trajectory")
    assert traj == pytest.approx([0.0, 1 / 3, 2 / 3, 1.0])
    store = ResultStore(tmp_path / "r.jsonl")
    store.append(rows)
    df = store.read()
    assert len(df) == len(rows) and set(df["protocol.extractor"]) == {"domain-digits"}


def test_the_seed_ritual_evaluates_disjoint_image_seed_ranges(tmp_path, capsys):
    """``evaluate --seed 0 --seed 1 --seed 2``: three evaluations of disjoint image-seed ranges; the table
    aggregates them as seeds and says so."""
    from hdfm_bench.cli import main

    res = train(cfg_for(tmp_path, "noise_fm", steps=3), progress=False)
    store = tmp_path / "r.jsonl"
    assert main(["evaluate", str(res.run_dir), "-n", "20", "--steps", "2", "--seed", "0", "--seed", "1", "--seed",
                 "2", "--store", str(store), "--metrics", "fid"]) == 0
    rows = [r for r in ResultStore(store).rows() if r["metric"] == "fid"]
    assert sorted(r["protocol"]["image_seeds"] for r in rows) == ["0-19", "16777216-16777235", "33554432-33554451"]
    assert len({r["value"] for r in rows}) == 3
    assert main(["table", "--store", str(store), "--metric", "fid"]) == 0
    assert "Cells: mean ± std over 3 seeds" in capsys.readouterr().out


def test_a_run_is_measured_against_its_own_data(tmp_path):
    """The reference is the run's task with the run's own parameters (a dead-leaves run with n_test=64 is
    measured against those 64 images; a digits run with another split against its own test split), and the
    reference's identity (parameters + data hash) is in the protocol stamp."""
    from hdfm_bench.evaluation.metrics.features import Extractor
    from hdfm_bench.evaluation.metrics.reference import Reference
    from hdfm_bench.tasks import get_task

    leaves = dict(n_train=64, n_test=64, root=str(tmp_path / "leaves"))
    res = train(cfg_for(tmp_path, "noise_fm", task="deadleaves", task_params=leaves, steps=2, batch_size=8,
                        backbone_params={"patch": 8, "width": 32, "depth": 1, "heads": 2}), progress=False)
    rows, _ = evaluate_run(res.run_dir, sampler="euler", steps=2, n=16, metrics=("fid",), trajectory_n=0)
    p = next(r["protocol"] for r in rows if r["metric"] == "fid")
    own = Reference.from_task(get_task("deadleaves", **leaves), "test", Extractor("domain-deadleaves"),
                              root=tmp_path / "refs")
    assert p["n_ref"] == 64 and p["reference_hash"] == own.hash

    digits = train(cfg_for(tmp_path, "noise_fm", task_params={"split_seed": 1}, steps=2), progress=False)
    rows, _ = evaluate_run(digits.run_dir, sampler="euler", steps=2, n=16, metrics=("fid",), trajectory_n=0)
    p = next(r["protocol"] for r in rows if r["metric"] == "fid")
    ext = Extractor("domain-digits")
    split = get_task("digits").protocol["reference_split"]
    mine = Reference.from_task(get_task("digits", split_seed=1), split, ext, root=tmp_path / "refs")
    default = Reference.from_task("digits", split, ext, root=tmp_path / "refs")
    assert p["reference_hash"] == mine.hash != default.hash
