"""Figures render from a store and refuse empty requests."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from hdfm_bench.evaluation import plots, tables
from tests.evaluation.helpers import frame, rows
from tests.helpers import assert_png


def _data() -> pd.DataFrame:
    df = frame(rows("noise_fm", "fid", [10.0, 11.0]), rows("hdfm", "fid", [8.0], nfe=40),
               rows("hdfm", "band_ratio@0.25-0.5", [0.8]), rows("noise_fm", "band_ratio@0.25-0.5", [1.1]))
    traj = []
    for t in (0.0, 0.5, 1.0):
        traj += rows("hdfm", "r_hf_trajectory", [1 + t], t=t)
    return pd.concat([df, frame(traj)])


@pytest.fixture
def drawn(monkeypatch):
    """The figures the plot functions draw (saved as usual), for inspection."""
    figs = []
    save = plots.save_figure

    def keep(fig, dest, **kw):
        figs.append(fig)
        return save(fig, dest, **kw)

    monkeypatch.setattr(plots, "save_figure", keep)
    return figs


def test_fid_vs_nfe_draws_the_mean_per_method_at_its_counted_nfe(tmp_path, drawn):
    assert_png(plots.plot_metric_vs_nfe(_data(), tmp_path / "a.png"))
    ax = drawn[-1].axes[0]
    assert set(ax.get_legend_handles_labels()[1]) == {"noise_fm", "hdfm"} and ax.get_xscale() == "log"
    points = {(tuple(map(float, ln.get_xdata())), tuple(map(float, ln.get_ydata()))) for ln in ax.get_lines()}
    assert ((40.0,), (8.0,)) in points  # hdfm: one row at its counted NFE
    assert any(len(ys) == 1 and ys[0] == pytest.approx(10.5) for _, ys in points)  # noise_fm: mean of 10, 11


def test_band_ratio_and_trajectory_figures_carry_the_rows(tmp_path, drawn):
    assert_png(plots.plot_band_ratios(_data(), tmp_path / "b.png"))
    heights = sorted(round(p.get_height(), 6) for p in drawn[-1].axes[0].patches if p.get_height() > 0)
    assert heights == [0.8, 1.1]
    assert_png(plots.plot_trajectory(_data(), tmp_path / "c.png"))
    ax = drawn[-1].axes[0]
    curve = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == 3]
    assert len(curve) == 1 and curve[0].get_xdata().tolist() == [0.0, 0.5, 1.0]
    assert curve[0].get_ydata().tolist() == pytest.approx([1.0, 1.5, 2.0])


def test_losses_are_smoothed_per_method(tmp_path, drawn):
    hist = {"hdfm": [[s, 1.0 if s % 2 else 3.0] for s in range(1, 101)], "noise_fm": [[1, 1.0], [2, 0.5]]}
    assert_png(plots.plot_losses(hist, tmp_path / "l.png"))
    ax = drawn[-1].axes[0]
    by_len = {len(ln.get_xdata()): ln.get_ydata() for ln in ax.get_lines()}
    assert by_len[100][-1] == pytest.approx((13 * 3.0 + 12 * 1.0) / 25)  # last 25 steps: 13 threes, 12 ones
    assert by_len[2].tolist() == pytest.approx([1.0, 0.75])


def test_run_losses_come_from_the_records_of_the_stores_runs(tmp_path, drawn):
    runs = tmp_path / "runs"
    for run_id, hist in (("r1", [[1, 2.0], [2, 1.0]]), ("r2", [[1, 4.0], [2, 3.0], [3, 2.0]])):
        (runs / run_id).mkdir(parents=True)
        (runs / run_id / "run.json").write_text(json.dumps({"run_id": run_id, "history": hist}))
    df = pd.DataFrame({"method": ["hdfm", "hdfm", "noise_fm", "ihdm"], "run_id": ["r1", "r1", "r2", "gone"]})
    assert_png(plots.plot_run_losses(df, runs, tmp_path / "losses.png"))
    ax = drawn[-1].axes[0]
    assert set(ax.get_legend_handles_labels()[1]) == {"hdfm", "noise_fm"}  # a run without a record: left out
    assert sorted(len(ln.get_xdata()) for ln in ax.get_lines() if len(ln.get_xdata())) == [2, 3]
    with pytest.raises(tables.TableError, match="no training histories"):
        plots.plot_run_losses(df[df.run_id == "gone"], runs, tmp_path / "none.png")

def test_empty_requests_are_refused(tmp_path):
    with pytest.raises(tables.TableError, match="no 'kid' rows"):
        plots.plot_metric_vs_nfe(_data(), tmp_path / "x.png", metric="kid")
    with pytest.raises(tables.TableError, match="no training histories"):
        plots.plot_losses({"hdfm": []}, tmp_path / "y.png")
    assert not list(tmp_path.iterdir())
