"""Tables: mean ± std over seeds, best in bold, protocol refusals naming the field, budget flags."""
from __future__ import annotations

import pytest

from hdfm_bench.evaluation import tables
from tests.evaluation.helpers import PROTO, frame, rows


def test_mean_std_best_and_bold():
    df = frame(rows("noise_fm", "fid", [10.0, 12.0]), rows("hdfm", "fid", [8.0, 9.0]),
               rows("noise_fm", "recall", [0.5, 0.7]), rows("hdfm", "recall", [0.4, 0.4]))
    text, warnings = tables.make_table(df, columns=["fid", "recall"])
    assert warnings == []
    lines = {line.split("|")[1].strip(): line for line in text.splitlines()[2:] if line.startswith("|")}
    assert text.splitlines()[-1].startswith("Cells: mean ± std over 2 seeds") and "best of them" in text
    assert "**8.5 ± 0.71 (best 8)**" in lines["hdfm"]                  # lower FID is better
    assert "11 ± 1.4 (best 10)" in lines["noise_fm"]
    assert "**0.6 ± 0.14 (best 0.7)**" in lines["noise_fm"]            # higher recall is better
    agg = tables.aggregate(df)
    best = agg[(agg.method == "noise_fm") & (agg.metric == "fid")]["best"].iloc[0]
    assert best == 10.0
    latex, _ = tables.make_table(df, fmt="latex", columns=["fid"])
    assert "\\textbf{8.5 $\\pm$ 0.71 (best 8)}" in latex and "\\begin{tabular}" in latex
    csv, _ = tables.make_table(df, fmt="csv", columns=["fid"])
    assert csv.splitlines()[0] == "method,metric,mean,std,best,n_seeds"


def test_spectral_ratios_are_best_closest_to_one():
    """R_hf and the band ratios are generated / reference power: 1 is ideal, 0.5 and 2 are equally far."""
    band = "band_ratio@0.25-0.5"
    df = frame(rows("a", "r_hf", [0.45]), rows("b", "r_hf", [1.8]), rows("c", "r_hf", [0.6]),
               rows("a", band, [0.2]), rows("b", band, [1.6]), rows("c", band, [0.55]))
    text, _ = tables.make_table(df, columns=["r_hf", band])
    lines = {line.split("|")[1].strip(): line for line in text.splitlines()[2:] if line.startswith("|")}
    assert "**0.6**" in lines["c"] and "**1.8**" not in lines["b"]  # r_hf: |log 0.6| < |log 1.8|
    assert "**1.6**" in lines["b"] and "**0.55**" not in lines["c"]  # band: |log 1.6| < |log 0.55|
    assert "**" not in lines["a"]  # the lowest is not the best


def test_mixed_protocols_are_refused_naming_the_field():
    df = frame(rows("noise_fm", "fid", [10.0]), rows("hdfm", "fid", [8.0], n_gen=1000))
    with pytest.raises(tables.TableError, match="column 'fid' mixes protocols: field 'n_gen' differs"):
        tables.make_table(df)
    text, warnings = tables.make_table(df, allow_mixed=True)
    assert "n_gen" in warnings[0] and "hdfm" in text
    df = frame(rows("noise_fm", "fid", [10.0]), rows("hdfm", "fid", [8.0], extractor="inception"))
    with pytest.raises(tables.TableError, match="field 'extractor' differs"):
        tables.make_table(df)


def test_samplers_may_differ_per_method_but_budgets_are_flagged():
    df = frame(rows("noise_fm", "fid", [10.0]), rows("ihdm", "fid", [30.0], sampler="ihdm_delta", nfe=200))
    text, warnings = tables.make_table(df)
    assert warnings == [] and "†" not in text
    other = {**PROTO["budget"], "images_seen": 1000}
    df = frame(rows("noise_fm", "fid", [10.0]), rows("hdfm", "fid", [9.0]), rows("ihdm", "fid", [30.0], budget=other))
    text, warnings = tables.make_table(df)
    assert any("budget differs for: ihdm" in w for w in warnings)
    assert "ihdm †" in text


def test_every_method_with_another_budget_is_flagged_and_scored_images_are_only_noted():
    """Two outliers are both marked (the mark once read the warning's text, which joined them); a row of
    scored images carries no budget: said under the table, never flagged or counted as the majority."""
    other = {**PROTO["budget"], "images_seen": 1000}
    df = frame(rows("noise_fm", "fid", [10.0]), rows("hdfm", "fid", [9.0]), rows("bd", "fid", [9.5]),
               rows("ihdm", "fid", [30.0], budget=other), rows("cold (x, y)", "fid", [20.0], budget=other),
               rows("theirs", "fid", [8.0], budget=None))
    text, warnings = tables.make_table(df)
    assert "ihdm †" in text and "cold (x, y) †" in text and "theirs †" not in text and "noise_fm †" not in text
    assert any(w.startswith("training budget unknown for: theirs") for w in warnings)


def test_bad_requests():
    df = frame(rows("noise_fm", "fid", [10.0]))
    with pytest.raises(tables.TableError, match="unknown table format 'html'"):
        tables.make_table(df, fmt="html")
    with pytest.raises(tables.TableError, match="no rows for column"):
        tables.make_table(df, columns=["fid", "kid"])
    with pytest.raises(tables.TableError, match="no results"):
        tables.make_table(df.iloc[:0])


def test_table_command_refuses_and_overrides(tmp_path):
    import subprocess
    import sys

    from hdfm_bench.evaluation.store import ResultStore

    store = ResultStore(tmp_path / "r.jsonl")
    base = {"checkpoint_step": 10, "metric": "fid", "task": "mnist"}
    store.append([{**base, "run_id": "a", "method": "noise_fm", "value": 3.0, "protocol": {**PROTO, "seed": 0}},
                  {**base, "run_id": "b", "method": "hdfm", "value": 2.0,
                   "protocol": {**PROTO, "seed": 0, "reference_split": "train"}}])
    cmd = [sys.executable, "-m", "hdfm_bench.cli", "table", "--store", str(tmp_path / "r.jsonl")]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 2 and "field 'reference_split' differs" in res.stderr
    res = subprocess.run(cmd + ["--allow-mixed", "--format", "csv"], capture_output=True, text=True)
    assert res.returncode == 0 and "noise_fm,fid,3.0" in res.stdout


@pytest.mark.parametrize("field, a, b", [("steps", 5, 20), ("cfg_scale", 1.0, 3.0), ("ema", None, 0.99),
                                         ("sampler", "euler", "heun"), ("nfe", 10, 40), ("checkpoint_step", 300, 700),
                                         ("cfg_interval", [0.1, 1.0], [0.0, 1.0]),
                                         ("sampler_params", {}, {"churn": 0.5})])
def test_only_seeds_are_averaged(field, a, b):
    """Rows of one method measured with different settings never share a mean ± std cell: refused
    naming the field, or, with split, one row per setting labelled by what differs."""
    df = frame(rows("noise_fm", "fid", [10.0, 11.0], **{field: a}), rows("noise_fm", "fid", [20.0], **{field: b}),
               rows("hdfm", "fid", [9.0, 9.5]))
    with pytest.raises(tables.TableError, match=f"row 'noise_fm', column 'fid' would average rows measured "
                                                f"differently: field '{field}' differs"):
        tables.make_table(df)
    text, _ = tables.make_table(df, split=True)
    body = {line.split("|")[1].strip(): line for line in text.splitlines()[2:] if line.startswith("|")}
    key_a, key_b = (f"noise_fm [{field}={tables._json(v)}]" for v in (a, b))
    assert set(body) == {key_a, key_b, "hdfm"}
    assert "10.5 ± 0.71" in body[key_a] and "| 20 " in body[key_b] + " "  # the two seeds of a, the one of b


def test_seeds_still_aggregate_and_budget_differences_are_settings():
    df = frame(rows("noise_fm", "fid", [10.0, 11.0, 12.0]))
    text, _ = tables.make_table(df)
    assert "11 ± 1" in text
    longer = {**PROTO["budget"], "steps": 1400, "images_seen": 134400}
    df = frame(rows("noise_fm", "fid", [10.0]), rows("noise_fm", "fid", [7.0], budget=longer))
    with pytest.raises(tables.TableError, match="field 'budget' differs"):
        tables.make_table(df)


def _grid_rows():
    """noise_fm: CFG 3 wins on seed 0 (8 < 10) though CFG 1 would win on seed 1 (5 < 9); hdfm: EMA 0.99 wins."""
    out = []
    for method, setting, values in (("noise_fm", {"cfg_scale": 1.0}, (10.0, 5.0)),
                                    ("noise_fm", {"cfg_scale": 3.0}, (8.0, 9.0)),
                                    ("hdfm", {"ema": 0.99}, (6.0, 6.5)), ("hdfm", {"ema": 0.999}, (7.0, 7.5))):
        for seed, v in enumerate(values):
            out += rows(method, "fid", [v], seed=seed, **setting)
            out += rows(method, "kid", [v / 10], seed=seed, **setting)
    return frame(out)


def test_best_setting_is_chosen_on_seeds_a_and_reported_on_seeds_b():
    df = _grid_rows()
    reported, grid = tables.best_settings(df, ["cfg_scale", "ema"], select_seeds=[0], report_seeds=[1])
    fid = reported[reported.metric == "fid"].set_index("method")["value"]
    assert fid.to_dict() == {"noise_fm [cfg_scale=3.0, ema=0.999]": 9.0, "hdfm [cfg_scale=3.0, ema=0.99]": 6.5}
    assert set(reported.metric) == {"fid", "kid"}  # every metric of the chosen setting
    chosen = grid[grid.chosen]
    assert sorted(chosen["fid (seeds A)"]) == [6.0, 8.0] and len(grid) == 4
    text, _ = tables.make_table(reported, columns=["fid"])
    assert "**6.5**" in text
    # choosing on seed 1 instead picks CFG 1 for noise_fm — the choice is the selection seeds'
    again, _ = tables.best_settings(df, ["cfg_scale", "ema"], select_seeds=[1], report_seeds=[0])
    assert "noise_fm [cfg_scale=1.0, ema=0.999]" in set(again.method)
    same, _ = tables.best_settings(df, ["cfg_scale"], [0], [1], relabel=False)
    assert set(same.method) == {"noise_fm", "hdfm"}


def test_best_setting_refuses_bad_requests():
    df = _grid_rows()
    with pytest.raises(tables.TableError, match="overlap"):
        tables.best_settings(df, ["cfg_scale"], [0, 1], [1])
    with pytest.raises(tables.TableError, match="cannot select over colour"):
        tables.best_settings(df, ["cfg_scale", "colour"], [0], [1])
    with pytest.raises(tables.TableError, match="no 'fid' rows with selection seeds \\[7\\]"):
        tables.best_settings(df, ["cfg_scale"], [7], [1])
    with pytest.raises(tables.TableError, match="has no rows with report seeds \\[5\\]"):
        tables.best_settings(df, ["cfg_scale"], [0], [5])
    assert tables.parse_seeds("0,2-4") == (0, 2, 3, 4)
    with pytest.raises(tables.TableError, match="expected seeds"):
        tables.parse_seeds("a-b")


def test_best_setting_report_says_how_the_setting_was_chosen_and_shows_the_grid():
    df = _grid_rows()
    reported, grid = tables.best_settings(df, ["cfg_scale", "ema"], select_seeds=[0], report_seeds=[1])
    table, _ = tables.make_table(reported, columns=["fid"])
    text = tables.best_setting_report(table, grid, ["cfg_scale", "ema"], "0", "1")
    head, rest = text.split("\n\n", 1)
    assert head == "Best setting per row over cfg_scale × ema, selected on sampling seeds 0 (fid), reported on " \
                   "sampling seeds 1:"
    assert rest.startswith(table + "\n\nSelection grid (fid on seeds 0; * = chosen):\n\n")
    assert rest.endswith(tables.selection_grid(grid, ["cfg_scale", "ema"]))
    csv = tables.best_setting_report("t", grid, ["cfg_scale", "ema"], "0,2", "1", fmt="csv")
    assert "selected on sampling seeds 0,2 (fid)" in csv and "Selection grid (fid on seeds 0,2;" in csv
    assert csv.endswith(tables.selection_grid(grid, ["cfg_scale", "ema"], fmt="csv"))

def test_table_command_best(tmp_path, capsys):
    import json

    from hdfm_bench.cli import main
    from hdfm_bench.evaluation.store import ResultStore

    df = _grid_rows()
    store = tmp_path / "r.jsonl"
    ResultStore.write_fresh(store, [{"run_id": r.run_id, "checkpoint_step": 700, "method": r.method,
                                     "metric": r.metric, "value": r.value, "protocol": json.loads(r.protocol_json)}
                                    for r in df.itertuples()])
    assert main(["table", "--store", str(store), "--best", "cfg_scale,ema", "--metric", "fid"]) == 0
    out = capsys.readouterr().out
    assert "selected on sampling seeds 0 (fid), reported on sampling seeds 1" in out
    assert "noise_fm [cfg_scale=3.0, ema=0.999]" in out and "Selection grid" in out and "8 *" in out
    assert main(["table", "--store", str(store), "--best", "cfg_scale", "--report-seeds", "0"]) == 2
