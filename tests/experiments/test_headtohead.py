"""``reproduce headtohead`` end to end on a tiny digits spec: selection on seeds A, report on seeds B, FID by
training step from the kept checkpoints."""
from __future__ import annotations

import json

from hdfm_bench.evaluation.store import ResultStore
from hdfm_bench.experiments.headtohead import SELECT_SEEDS, claim_over_steps, reproduce_headtohead
from tests.experiments.test_reproduce import BASE
from tests.helpers import assert_png

SPEC = f"""name = "tiny-h2h"
{BASE}
keep_every = 30

[grid]
path = ["noise_fm", "hdfm"]
target = ["x"]
loss = ["v"]
seed = [0, 1]

[[include]]
path = "blurring_diffusion"
target = "x"
loss = "x"
seed = [0]

[eval]
cfg_scale = [1.0]
ema = [0.9]
seed = [1]
n = 30
extractor = "domain-digits"
reference_split = "train"
metrics = ["fid"]
"""


def test_reproduce_headtohead(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "h2h.toml"
    spec.write_text(SPEC.replace("ema_decays = [0.9]", "ema_decays = [0.9, 0.99]"))
    summary = reproduce_headtohead(quick=True, spec=spec, out=tmp_path / "res")
    out = tmp_path / "res" / "quick"
    text = (out / "table.md").read_text()
    assert "Tuned (best setting per row" in text and "Selection grid" in text and "FID against training steps" in text
    for label in ("noise FM · x-pred", "HDFM · x-pred", "Blurring Diffusion · x-pred (x-loss)"):
        assert label in summary["chosen"]
        c = summary["chosen"][label]
        assert c["cfg_scale"] in (1.0, 3.0) and c["ema"] in (0.9, 0.99)
    rows = ResultStore(out / "results.jsonl").rows()
    fids = [r for r in rows if r["metric"] == "fid"]
    select = [r for r in fids if r["protocol"]["seed"] in SELECT_SEEDS]
    # the quick grid (CFG 1, 3 × EMA 0.9, 0.99 × one budget) on the first training seed of each row
    assert len(select) == 3 * 4 and len({r["run_id"] for r in select}) == 3  # one run per row
    assert {r["checkpoint_step"] for r in select} == {40}

    def chosen(r):  # rows of the sweep's own fixed protocol carry the sweep's labels, not the comparison's
        c, p = summary["chosen"].get(r["method"]), r["protocol"]
        return c is not None and (p["cfg_scale"], p["ema"], p["steps"]) == (c["cfg_scale"], c["ema"], c["steps"])

    report = [r for r in fids if r["protocol"]["seed"] == 1 and chosen(r)]
    # every training seed of every row at the kept step 20 and the last, 40 (the quick budget)
    assert sorted({r["checkpoint_step"] for r in report}) == [20, 40]
    assert len({(r["run_id"], r["checkpoint_step"]) for r in report}) == 3 * 2  # --quick: one training seed
    assert [c["step"] for c in summary["claim"]] == [20, 40]
    assert_png(out / "fid_vs_steps.png")
    # again: nothing new is measured, the same choice comes back
    n_before = len(ResultStore(tmp_path / "sweeps" / "tiny-h2h-quick" / "results.jsonl").rows())
    again = reproduce_headtohead(quick=True, spec=spec, out=tmp_path / "res")
    assert json.dumps(again["chosen"], sort_keys=True) == json.dumps(summary["chosen"], sort_keys=True)
    assert len(ResultStore(tmp_path / "sweeps" / "tiny-h2h-quick" / "results.jsonl").rows()) == n_before


def test_claim_compares_the_gap_with_seed_noise():
    import pandas as pd

    curve = pd.DataFrame({"method": ["HDFM · x-pred"] * 2 + ["noise FM · x-pred"] * 2, "step": [100] * 4,
                          "run_id": list("abcd"), "fid": [10.0, 12.0, 20.0, 22.0]})
    (c,) = claim_over_steps(curve)
    assert c["verdict"] == "blur helps" and c["gap"] == -10.0 and abs(c["seed_noise"] - 2.0) < 1e-12
    curve["fid"] = [10.0, 14.0, 11.0, 15.0]
    assert claim_over_steps(curve)[0]["verdict"] == "within seed noise"


def test_inception_rows_get_their_own_table():
    from hdfm_bench.experiments.headtohead import INCEPTION, _inception_text
    from tests.evaluation.helpers import frame, rows

    inc = frame(rows("noise FM · x-pred", "fid", [30.0, 34.0], extractor=INCEPTION, n_gen=500),
                rows("HDFM · x-pred", "fid", [20.0, 22.0], extractor=INCEPTION, n_gen=500))
    text = _inception_text(inc)
    assert "Inception FID** (inception-offline, n = 500" in text
    assert "**21 ± 1.4 (best 20)**" in text and "32 ± 2.8 (best 30)" in text
    assert _inception_text(inc.iloc[:0]) == ""


def test_curve_steps_take_every_second_kept_checkpoint_beyond_three(tmp_path):
    import types

    from hdfm_bench.core.rundir import kept_checkpoint_path
    from hdfm_bench.experiments.headtohead import curve_steps

    def run(kept, steps):
        for s in kept:
            kept_checkpoint_path(tmp_path / str(steps), s).parent.mkdir(parents=True, exist_ok=True)
            kept_checkpoint_path(tmp_path / str(steps), s).write_bytes(b"")
        return types.SimpleNamespace(config=types.SimpleNamespace(run_dir=lambda: tmp_path / str(steps), steps=steps))

    assert curve_steps(run([300, 600, 900, 1200, 1500, 1800], 1800)) == [600, 1200]  # + the last, 1800
    assert curve_steps(run([400, 800], 800)) == [400]
