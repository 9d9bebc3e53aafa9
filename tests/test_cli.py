"""The hdfm-bench command: help everywhere, every command run once for real on a tiny budget (the registry
listing, gallery, perf, train → sample → evaluate → table / plot, reference, prepare, train-extractor,
a sweep with its status, the reproductions' sub-commands and their refusals, the suite's report), one-line
errors."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from hdfm_bench import cli
from hdfm_bench.cli.reproduce import default_reproduction
from hdfm_bench.evaluation.store import ResultStore
from hdfm_bench.methods import PATHS, SAMPLERS
from tests.helpers import assert_png
from tests.sweeps.test_sweeps import write_spec

COMMANDS = ["list", "gallery", "perf", "train", "sample", "evaluate", "score", "diagnose", "reference", "prepare",
            "train-extractor", "table", "plot", "report", "sweep", "status", "reproduce", "run"]
#: each reproduction's options (besides -h): only those that apply to it
REPRODUCTIONS = {
    "toy": {"--quick", "--out", "--dist", "--threads"},
    "ablation": {"--quick", "--out", "--executor", "--spec", "--set", "--eval", "--best", "--select-seeds",
                 "--report-seeds", "--threads"},
    "spectral": {"--quick", "--out", "--executor", "--spec", "--set", "--threads"},
    "headtohead": {"--quick", "--out", "--executor", "--spec", "--set", "--inception-n", "--threads"},
    "stability": {"--quick", "--out", "--executor", "--spec", "--set", "--threads"},
}
TINY = ["--backbone-params", "patch=2", "--backbone-params", "width=32", "--backbone-params", "depth=1"]


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "hdfm_bench.cli", *args], capture_output=True, text=True)


def _help(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as info:
        cli.main([*argv, "--help"])
    assert info.value.code == 0
    return capsys.readouterr().out


def _refused(argv: list[str], capsys) -> str:
    """argv is refused by argparse (exit 2): its error line."""
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


def _options(help_text: str) -> set[str]:
    return set(re.findall(r"^  (--[\w-]+)", help_text, re.MULTILINE)) - {"--help"}


# ---- help ---------------------------------------------------------------------------------------------------

def test_the_command_list_is_complete(capsys):
    """Every command the parser has is in COMMANDS (so each is tested here), in the order --help lists them."""
    listed = re.findall(r"^    ([\w-]+)\s", _help([], capsys).split("  COMMAND\n", 1)[1], re.MULTILINE)
    assert listed == COMMANDS


@pytest.mark.parametrize("command", [None, *COMMANDS, *(f"reproduce {r}" for r in REPRODUCTIONS)])
def test_help_everywhere(command, capsys):
    argv = [] if command is None else command.split()
    out = _help(argv, capsys)
    assert out.startswith(f"usage: hdfm-bench{'' if command is None else ' ' + command}")
    if command is None:
        assert all(c in out for c in COMMANDS)
    elif command.startswith("reproduce "):  # only the options that apply to this reproduction
        what = argv[1]
        assert _options(out) == REPRODUCTIONS[what] and f"results/{what}" in out
    elif command != "reproduce":
        assert "--threads" in _options(out)


def test_reproduce_help_lists_the_reproductions(capsys):
    out = _help(["reproduce"], capsys)
    assert out.startswith("usage: hdfm-bench reproduce [-h] WHAT ...")
    listed = re.findall(r"^    ([\w-]+)", out, re.MULTILINE)
    assert listed == list(REPRODUCTIONS)
    assert "HDFM Fig. 5: R_hf along sampling" in out and "without one: toy" in out


# ---- list, gallery, perf -------------------------------------------------------------------------------------

def test_list_shows_the_registry(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    # the built-ins (6 paths, 7 samplers) and whatever an installed plugin (examples/hdfm-bench-ve) added
    assert len([n for n in PATHS if PATHS.origin(n).startswith("hdfm_bench.")]) == 6
    assert len([n for n in SAMPLERS if SAMPLERS.origin(n).startswith("hdfm_bench.")]) == 7
    assert f"PATHS ({len(PATHS)})" in out and "TARGETS (4)" in out and f"SAMPLERS ({len(SAMPLERS)})" in out
    assert "a = 0.5" in out and "target_laplacian = 1.0" in out and "K = 200" in out
    assert cli.main(["list", "--json"]) == 0
    reg = json.loads(capsys.readouterr().out)
    assert len(reg["paths"]) >= 6 and len(reg["targets"]) >= 3 and len(reg["samplers"]) >= 6
    assert reg["samplers"]["ihdm_delta"]["paths"] == ["ihdm"]
    assert reg["paths"]["hdfm"]["default"] == {"target": "x", "loss": "v", "norm": "l2", "sampler": "hdfm_exact",
                                               "steps": 20}


def test_list_names_every_registry_with_its_parameters(capsys):
    from hdfm_bench.backbones import BACKBONES
    from hdfm_bench.evaluation.metrics.extractors import EXTRACTORS
    from hdfm_bench.evaluation.metrics.features import METRICS
    from hdfm_bench.tasks import TASKS

    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for title, registry in (("BACKBONES", BACKBONES), ("TASKS", TASKS), ("EXTRACTORS", EXTRACTORS),
                            ("METRICS", METRICS)):
        assert f"\n{title} ({len(registry)})\n" in out
        assert all(f"\n  {name} " in out for name in registry), title
    assert "sizes tiny, small, B (default tiny): width=96, depth=4" in out  # the vit preset's parameters
    assert "root = required  (Path) the training zip" in out  # imagezip's parameters
    assert "n_test = 2000  (int) images in the test split" in out  # deadleaves'
    assert cli.main(["list", "--json"]) == 0
    reg = json.loads(capsys.readouterr().out)
    assert list(reg["tasks"]) == list(TASKS) and list(reg["backbones"]) == list(BACKBONES)
    assert reg["extractors"]["domain-deadleaves"]["input_size"] == [3, 32, 32]
    assert reg["metrics"]["kid"] == {"summary": METRICS["kid"].summary, "outputs": ["kid_mean", "kid_std"],
                                     "needs_features": True}
    assert {"name": "patch", "default": 4} in reg["backbones"]["vit"]["parameters"]


def test_gallery_writes_one_png(tmp_path, capsys):
    out = tmp_path / "g.png"
    assert cli.main(["gallery", "--out", str(out), "--times", "0,1"]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    assert_png(out, 50, 50)


def test_perf_writes_its_section(tmp_path, capsys):
    out = tmp_path / "perf.md"
    assert cli.main(["perf", "--only", "spectral", "--repeats", "1", "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    text = out.read_text()
    assert "<!-- section:spectral -->" in text and "| batch | pass |" in text
    assert "section:metrics" not in text  # --only: that benchmark alone


# ---- train → sample → evaluate → table / plot -------------------------------------------------------------------

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
                                   "--batch-size", "16", *TINY, "--out-dir", str(tmp_path), "--no-progress"],
                         capture_output=True, text=True)
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


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """One 3-step digits run, trained through the command."""
    runs = tmp_path_factory.mktemp("runs")
    assert cli.main(["train", "--task", "digits", "--path", "noise_fm", "--steps", "3", "--batch-size", "16", *TINY,
                     "--out-dir", str(runs), "--no-progress"]) == 0
    (run,) = runs.iterdir()
    return run


def test_sample_names_its_files_by_the_protocol(tiny_run, tmp_path, capsys):
    folder = tmp_path / "grids"
    folder.mkdir()
    assert cli.main(["sample", str(tiny_run), "--steps", "2", "-n", "10", "--cfg-scale", "1.5", "--seed", "4",
                     "--out", str(folder)]) == 0
    out = capsys.readouterr().out
    assert sorted(p.name for p in folder.iterdir()) == [f"heun-2-cfg1.5-emaNone-seed4.{ext}"
                                                       for ext in ("json", "png", "pt")]
    assert "10 samples, sampler heun (2 steps" in out and out.strip().endswith("heun-2-cfg1.5-emaNone-seed4.png")
    assert cli.main(["sample", str(tiny_run), "--steps", "2", "-n", "10", "--out", str(tmp_path / "s")]) == 0
    assert json.loads((tmp_path / "s.json").read_text())["n"] == 10  # a stem: STEM.png, .pt, .json


def test_evaluate_then_table_and_plot(tiny_run, tmp_path, capsys):
    store = tmp_path / "store.jsonl"
    for cfg in ("1", "2"):  # two settings x two sampling seeds: what `table --best` chooses among
        assert cli.main(["evaluate", str(tiny_run), "--steps", "2", "-n", "10", "--cfg-scale", cfg, "--seed", "0",
                         "--seed", "1", "--method", "tiny", "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert out.count("protocol: domain-digits") == 4 and f"rows in {store}" in out
    rows = ResultStore(store).read()
    assert set(rows["method"]) == {"tiny"} and "fid" in set(rows["metric"])

    assert cli.main(["table", "--store", str(store), "--split", "--metric", "fid"]) == 0
    assert re.search(r"\| tiny .*cfg_scale", capsys.readouterr().out)
    dest = tmp_path / "best.md"
    assert cli.main(["table", "--store", str(store), "--best", "cfg_scale", "--metric", "fid", "--out", str(dest)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Best setting per row over cfg_scale, selected on sampling seeds 0 (fid), reported on "
                          "sampling seeds 1:")
    grid = out.split("Selection grid (fid on seeds 0; * = chosen):", 1)[1]
    assert len(re.findall(r"^\| tiny .*\d \*", grid, re.MULTILINE)) == 1  # one of the two settings chosen
    assert dest.read_text().strip() == out.strip()

    plots = tmp_path / "plots"
    assert cli.main(["plot", "--store", str(store), "--out-dir", str(plots), "--kind", "fid_vs_nfe", "--kind",
                     "losses", "--runs-dir", str(tiny_run.parent)]) == 0
    assert capsys.readouterr().out.split() == ["wrote", str(plots / "fid_vs_nfe.png"), "wrote",
                                               str(plots / "losses.png")]
    assert_png(plots / "fid_vs_nfe.png")
    assert_png(plots / "losses.png")


# ---- reference, prepare, train-extractor ------------------------------------------------------------------------

def test_reference_statistics_of_a_task_split(tmp_path, capsys):
    out = tmp_path / "ref.npz"
    assert cli.main(["reference", "digits", "--extractor", "domain-digits", "--out", str(out)]) == 0
    assert re.match(rf"wrote {re.escape(str(out))}: \d+ images, 128-d domain-digits", capsys.readouterr().out)
    with np.load(out) as npz:
        assert npz["mu"].shape == (128,) and npz["sigma"].shape == (128, 128) and "features" not in npz


def test_prepare_an_image_folder_with_its_reference_statistics(tmp_path, capsys):
    from PIL import Image

    for cls in ("a", "b"):
        (tmp_path / "images" / cls).mkdir(parents=True)
        for k in range(2):
            Image.new("RGB", (40, 36), (60 * k, 100, 200)).save(tmp_path / "images" / cls / f"{k}.png")
    dest, stats = tmp_path / "d.zip", tmp_path / "stats.npz"
    assert cli.main(["prepare", str(tmp_path / "images"), str(dest), "--resolution", "32", "--workers", "1",
                     "--reference-stats", str(stats), "--extractor", "domain-deadleaves"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"wrote {dest}: 4 images at 32x32, 2 classes"
    assert out[1].startswith(f"wrote {stats}: 4 images, 128-d domain-deadleaves")
    names = zipfile.ZipFile(dest).namelist()
    assert "dataset.json" in names and len([n for n in names if n.endswith(".png")]) == 4
    with np.load(stats) as npz:
        assert npz["mu"].shape == (128,)


# train-extractor runs for real through this command in tests/evaluation/test_fidelity.py
# (test_train_extractor_writes_the_file_that_gets_shipped): the same 13 s training is not repeated here.


# ---- sweep and status --------------------------------------------------------------------------------------------

def test_sweep_dry_run_and_status_of_the_shipped_spec(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the shipped spec's folders are relative: here, and nothing may appear
    assert cli.main(["sweep", "digits-mini", "--executor", "debug", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "sweep 'digits-mini'" in out and "4 run(s), 8 evaluation(s)" in out and "via executor 'debug'" in out
    assert cli.main(["status", "digits-mini"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| run_id") and out.count("| pending") == 4
    assert cli.main(["status", "digits-mini", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 4 and {r["state"] for r in rows} == {"pending"}
    assert list(tmp_path.iterdir()) == []


def test_a_tiny_sweep_runs_and_reports_done(tmp_path, capsys):
    spec = write_spec(tmp_path, grid='path = ["noise_fm"]', steps=3, checkpoint_every=3, evals="steps = [2]")
    assert cli.main(["sweep", str(spec), "--executor", "debug"]) == 0
    out = capsys.readouterr().out
    assert "sweep 't': 1 run(s) (1 pending); submitting 1 via executor 'debug'" in out and "| done" in out
    assert cli.main(["status", str(spec)]) == 0
    assert re.search(r"\| noise_fm +\| done +\| 3/3 +\| 1/1", capsys.readouterr().out)
    assert cli.main(["table", str(spec), "--metric", "fid"]) == 0
    assert re.search(r"^\| noise_fm \| \*\*[\d.]+\*\* \|$", capsys.readouterr().out, re.MULTILINE)  # its one row


# ---- reproduce ------------------------------------------------------------------------------------------------

def test_reproduce_refuses_options_of_other_reproductions(capsys):
    assert _refused(["reproduce", "toy", "--best", "cfg_scale"], capsys).endswith(
        "error: unrecognized arguments: --best cfg_scale")
    assert _refused(["reproduce", "headtohead", "--dist", "nope"], capsys).endswith(
        "error: unrecognized arguments: --dist nope")
    assert "invalid choice: 'nope'" in _refused(["reproduce", "nope"], capsys)


def test_reproduce_without_a_name_runs_toy_and_the_name_may_stand_anywhere(tmp_path, capsys):
    out = tmp_path / "toy"
    # no reproduction named: toy, whose --dist is checked before any work
    assert cli.main(["reproduce", "--quick", "--out", str(out), "--dist", "nope"]) == 2
    assert "nope" in capsys.readouterr().err and not out.exists()
    # the name after options (as before it became a sub-command): the same checks as `table --best`
    assert cli.main(["reproduce", "--quick", "ablation", "--best", "cfg_scale", "--select-seeds", "0",
                     "--report-seeds", "0"]) == 2
    assert capsys.readouterr().err.startswith("hdfm-bench: error: selection and report seeds overlap (0)")
    assert default_reproduction(["reproduce"]) == ["reproduce", "toy"]
    assert default_reproduction(["reproduce", "--out", "toy", "spectral"]) == ["reproduce", "spectral", "--out", "toy"]
    assert default_reproduction(["reproduce", "--dist", "spectral"]) == ["reproduce", "toy", "--dist", "spectral"]
    assert default_reproduction(["reproduce", "--help"]) == ["reproduce", "--help"]
    assert default_reproduction(["train", "--quick"]) == ["train", "--quick"]


# ---- run (the default suite) -----------------------------------------------------------------------------------

def test_run_refuses_an_unknown_method_before_any_work(tmp_path, capsys):
    """The suite itself (minutes of training) runs for real through this command in
    tests/experiments/test_suite.py (stopped by SIGTERM, resumed, its rows joined to the committed table)."""
    out, results = tmp_path / "runs", tmp_path / "r"
    assert cli.main(["run", "--quick", "--method", "nope", "--out-dir", str(out), "--results", str(results)]) == 2
    assert capsys.readouterr().err.strip() == ("hdfm-bench: error: unknown suite method 'nope'; known: noise_fm, hdfm, "
                                                "blurring_diffusion, ihdm")
    assert not out.exists() and not results.exists()


def test_plot_draws_every_kind_with_data_and_names_the_skipped_ones(tmp_path, capsys):
    """A store without FID rows (and no run folders) still gets its band-ratio and trajectory figures."""
    from hdfm_bench.evaluation.store import ResultStore

    rows = [r for r in ResultStore(Path(__file__).parents[1] / "results" / "suite" / "results.jsonl").rows()
            if r["metric"] != "fid"]
    store = ResultStore.write_fresh(tmp_path / "no_fid.jsonl", rows)
    out = tmp_path / "plots"
    assert cli.main(["plot", "--store", str(store.file), "--out-dir", str(out), "--runs-dir", str(tmp_path)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["band_ratios.png", "trajectory.png"]
    err = capsys.readouterr().err
    assert "note: skipped fid_vs_nfe (no 'fid' rows to plot)" in err and "note: skipped losses" in err
