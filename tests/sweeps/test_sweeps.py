"""Sweeps: expansion, validation, dry runs, idempotence, failures, preemption, data parallelism."""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from hdfm_bench.cli import main
from hdfm_bench.evaluation.store import ResultStore
from hdfm_bench.sweeps import state
from hdfm_bench.sweeps.spec import Sweep
from hdfm_bench.sweeps.state import status, status_text
from hdfm_bench.sweeps.submit import run_debug, submit, wait

TINY = 'backbone_params = { size = "tiny", patch = 2, width = 32, depth = 2, heads = 2, bottleneck = 16 }'


def write_spec(tmp_path: Path, *, grid='path = ["noise_fm", "hdfm"]', steps=30, evals='steps = [4]',
               extra_base="", extra="", slurm="", name="t", checkpoint_every=10) -> Path:
    spec = tmp_path / f"{name}.toml"
    spec.write_text(f"""
name = "{name}"
folder = "{tmp_path / 'sweep'}"
out_dir = "{tmp_path / 'runs'}"
{extra}
[base]
task = "digits"
backbone = "vit"
{TINY}
steps = {steps}
batch_size = 32
lr = 3e-3
warmup = 5
target = "x"
loss = "v"
ema_decays = [0.9]
checkpoint_every = {checkpoint_every}
{extra_base}
[grid]
{grid}
[eval]
{evals}
cfg_scale = [1.0]
ema = [0.9]
n = 40
kid_subset_size = 20
[slurm]
time = 10
cpus_per_task = 1
{slurm}
""")
    return spec


def test_expansion_grid_include_labels_and_stable_ids(tmp_path):
    spec = write_spec(tmp_path, grid='path = ["noise_fm", "hdfm"]\ntarget = ["x", "v"]\nseed = [0, 1]',
                      evals='steps = [4, 8]\nsampler = ["default"]')
    spec.write_text(spec.read_text() + '\n[[include]]\npath = "ihdm"\ntarget = "prev_mean"\nloss = "prev_mean"\n'
                    'path_params = { K = 10, sigma_blur_max = 4.0 }\n')
    s = Sweep.load(spec)
    assert len(s.runs) == 2 * 2 * 2 + 1
    assert len({r.run_id for r in s.runs}) == len(s.runs)
    assert all(len(r.evals) == 2 for r in s.runs)
    labels = [r.label for r in s.runs]
    assert labels[0] == "noise_fm target=x loss=v"
    assert labels[-1] == "ihdm target=prev_mean loss=prev_mean K=10 sigma_blur_max=4.0"
    assert labels.count(labels[0]) == 2  # seeds share a label (aggregated in tables)
    assert s.runs[0].evals[0].sampler == "heun" and s.runs[-1].evals[0].sampler == "ihdm_delta"
    # ids are the RunConfig hashes: loading again gives the same runs
    assert [r.run_id for r in Sweep.load(spec).runs] == [r.run_id for r in s.runs]
    # eval keys differ per setting and per run
    keys = [k for r in s.runs for k in r.eval_keys(False)]
    assert len(set(keys)) == len(keys)


@pytest.mark.parametrize("mutate,needle", [
    (lambda t: t.replace('name = "t"', 'name = "t"\nbogus = 1'), "unknown key(s) bogus"),
    (lambda t: t.replace("n = 40", "n = 40\nguidance = 2"), "[eval]: unknown key(s) guidance"),
    (lambda t: t.replace("time = 10", "time = 10\ngpu_count = 2"), "unknown parameter(s) gpu_count"),
    (lambda t: t.replace('path = ["noise_fm", "hdfm"]', 'path = "noise_fm"'), "must be a non-empty list"),
    (lambda t: t.replace('path = ["noise_fm", "hdfm"]', 'path = ["noise_fm", "hdfx"]'), "hdfx"),
    (lambda t: t.replace('steps = [4]', 'steps = [4]\nsampler = ["ihdm_delta"]'), "ihdm_delta"),
    (lambda t: t.replace("ema = [0.9]", "ema = [0.5]"), "ema 0.5 is not kept"),
    (lambda t: t.replace("cfg_scale = [1.0]", "cfg_scale = [2.0]").replace('task = "digits"',
                                                                          'task = "digits"\nconditional = false'),
     "needs a class-conditional run"),
    (lambda t: t.replace("steps = 30", "steps = 30\nwidth = 3"), "unknown key 'width'"),
    (lambda t: t.replace(TINY, 'backbone_params = { size = "huge" }'), "huge"),
    (lambda t: t.replace("[grid]", "[grid"), "invalid TOML"),
    (lambda t: t.replace("cpus_per_task = 1", "cpus_per_task = 1\nntasks_per_node = 3"),
     "batch_size 32 is not divisible by the 3 data-parallel processes"),
    (lambda t: t.replace("cpus_per_task = 1", "cpus_per_task = 1\nnodes = 5"),
     "batch_size 32 is not divisible by the 5 data-parallel processes"),
    (lambda t: t.replace("cpus_per_task = 1", "cpus_per_task = 1\nntasks_per_node = 2").replace(
        "checkpoint_every", 'backend = "jax"\ncheckpoint_every'), "data-parallel (2 processes) training is torch-only"),
])
def test_bad_spec_is_one_line_error_and_writes_nothing(tmp_path, capsys, mutate, needle):
    spec = write_spec(tmp_path)
    spec.write_text(mutate(spec.read_text()))
    assert main(["sweep", str(spec), "--executor", "debug"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hdfm-bench: error:") and needle in err and "\n" not in err
    assert not (tmp_path / "sweep").exists() and not (tmp_path / "runs").exists()


def test_slurm_executor_without_srun_is_refused_before_submitting(tmp_path, monkeypatch, capsys):
    spec = write_spec(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main(["sweep", str(spec), "--executor", "slurm"]) == 2
    err = capsys.readouterr().err
    assert "executor 'slurm' needs the Slurm client" in err and "srun" in err
    assert not (tmp_path / "sweep" / "jobs.jsonl").exists()


def test_eval_only_needs_checkpoints(tmp_path, capsys):
    spec = write_spec(tmp_path)
    assert main(["sweep", str(spec), "--executor", "debug", "--eval-only"]) == 2
    assert "no checkpoint for run(s) noise_fm, hdfm" in capsys.readouterr().err


def test_dry_run_prints_runs_and_sbatch_resources(tmp_path, capsys):
    spec = write_spec(tmp_path, slurm='partition = "gpu"\ngpus_per_node = 4\nmem = "32GB"')
    assert main(["sweep", str(spec), "--executor", "slurm", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "2 run(s), 2 evaluation(s)" in out and "#SBATCH --array=0-1" in out
    assert "#SBATCH --partition=gpu" in out and "#SBATCH --gpus-per-node=4" in out
    assert "#SBATCH --ntasks-per-node=4" in out  # one process per GPU
    assert "data parallel: 4 processes per training job" in out and "8 images of every global batch" in out
    assert not (tmp_path / "sweep").exists()


def test_multi_node_dry_run_spreads_one_process_per_gpu_over_the_nodes(tmp_path, capsys):
    spec = write_spec(tmp_path, slurm="nodes = 2\ngpus_per_node = 4", evals="steps = [3]\nshards = 2")
    assert main(["sweep", str(spec), "--executor", "slurm", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "#SBATCH --nodes=2" in out and "#SBATCH --ntasks-per-node=4" in out and "#SBATCH --gpus-per-node=4" in out
    assert "data parallel: 8 processes per training job (2 node(s) × 4 task(s)" in out
    assert "4 images of every global batch" in out
    shard_header = out.split("shard job array")[1]
    assert "#SBATCH --nodes=1" in shard_header and "#SBATCH --gpus-per-node=1" in shard_header  # one GPU, one node


def _starts(run) -> list:
    return json.loads((run.config.run_dir() / "run.json").read_text())["starts"]


def test_debug_sweep_is_idempotent_and_adds_only_new_evaluations(tmp_path, capsys):
    spec = write_spec(tmp_path)
    assert main(["sweep", str(spec), "--executor", "debug"]) == 0
    s = Sweep.load(spec)
    assert [r["state"] for r in status(s)] == ["done", "done"]
    store = ResultStore(s.store)
    n_rows = len(store.rows())
    per_set = n_rows // 2
    assert per_set > 10 and all(r["sweep"] == "t" for r in store.rows())
    # again: nothing is submitted, nothing is written
    assert main(["sweep", str(spec), "--executor", "debug"]) == 0
    assert "submitting 0" in capsys.readouterr().out and len(store.rows()) == n_rows
    # a new evaluation axis value: only the new settings are evaluated, nothing is retrained
    before = store.rows()
    spec.write_text(spec.read_text().replace("steps = [4]", "steps = [4, 6]"))
    assert main(["sweep", str(spec), "--executor", "debug"]) == 0
    s = Sweep.load(spec)
    assert store.rows()[:n_rows] == before and len(store.rows()) > n_rows and all(_starts(r) == [0] for r in s.runs)
    counts = state.stored_keys(s)
    assert sorted(counts.values()) == [1, 1, 1, 1]  # exactly one row set per (run, setting)
    n_rows = len(store.rows())
    # the sweep's table: one row per (path, steps), same protocol column-wise
    assert main(["table", str(spec)]) == 0
    table = capsys.readouterr().out
    assert "noise_fm steps=4" in table and "hdfm steps=6" in table
    # eval-only sweep over the finished checkpoints with a CFG axis: evaluates, trains nothing
    spec.write_text(spec.read_text().replace("cfg_scale = [1.0]", "cfg_scale = [1.0, 2.0]"))
    assert main(["sweep", str(spec), "--executor", "debug", "--eval-only"]) == 0
    assert len(store.rows()) == 2 * n_rows and all(_starts(r) == [0] for r in Sweep.load(spec).runs)
    assert sorted(state.stored_keys(Sweep.load(spec)).values()) == [1] * 8


def test_failed_job_reports_error_and_is_retried_only_when_asked(tmp_path, capsys):
    spec = write_spec(tmp_path, grid='path = ["noise_fm"]', steps=20)
    s = Sweep.load(spec)
    bad = s.runs[0].config.run_dir()
    bad.mkdir(parents=True)
    (bad / "checkpoint.pt").write_bytes(b"not a checkpoint")  # the job fails reading it
    assert main(["sweep", str(spec), "--executor", "local", "--timeout", "120"]) == 1
    st = status(s)[0]
    assert st["state"] == "failed" and "checkpoint" in st["detail"] and st["log"].endswith(".err")
    assert main(["status", str(spec)]) == 1
    assert "failed" in capsys.readouterr().out
    # a re-run without --retry-failed leaves it; with it (and the damage removed) it completes
    assert main(["sweep", str(spec), "--executor", "local"]) == 1
    assert "submitting 0" in capsys.readouterr().out
    (bad / "checkpoint.pt").unlink()
    assert main(["sweep", str(spec), "--executor", "local", "--retry-failed", "--timeout", "120"]) == 0
    assert status(s)[0]["state"] == "done"


def test_debug_executor_records_a_failed_job_never_opens_a_debugger_and_exits_non_zero(tmp_path, capsys,
                                                                                        monkeypatch):
    """--executor debug (the default of reproduce): a failing job used to stop at submitit's (Pdb)
    prompt and then show as pending with exit 0; now it is failed, with its error, everywhere."""
    import pdb

    monkeypatch.setattr(pdb, "post_mortem", lambda *a, **k: pytest.fail("a debugger was opened"))
    spec = write_spec(tmp_path, grid='path = ["noise_fm", "hdfm"]', steps=4)
    s = Sweep.load(spec)
    bad = s.runs[0].config.run_dir()
    bad.mkdir(parents=True)
    (bad / "checkpoint.pt").write_bytes(b"not a checkpoint")
    assert main(["sweep", str(spec), "--executor", "debug"]) == 1
    out = capsys.readouterr()
    assert f"sweep: job {s.runs[0].label} failed: CheckpointError: cannot read checkpoint" in out.err
    states = {r["label"]: r for r in status(s)}
    assert states[s.runs[0].label]["state"] == "failed" and "cannot read checkpoint" in \
        states[s.runs[0].label]["detail"]
    assert states[s.runs[1].label]["state"] == "done"  # one failure does not stop the others
    assert main(["status", str(spec)]) == 1
    (bad / "checkpoint.pt").unlink()
    assert main(["sweep", str(spec), "--executor", "debug", "--retry-failed"]) == 0
    assert {r["state"] for r in status(s)} == {"done"}


def test_status_names_a_corrupt_run_record(tmp_path, capsys):
    spec = write_spec(tmp_path, grid='path = ["noise_fm"]', steps=4)
    assert main(["sweep", str(spec), "--executor", "debug"]) == 0
    s = Sweep.load(spec)
    rec = s.runs[0].config.run_dir() / "run.json"
    rec.write_text("[1, 2")
    (row,) = status(s)
    assert row["state"] == "failed" and row["detail"].startswith(f"{rec} is unreadable")
    assert main(["status", str(spec)]) == 1


def test_status_text_is_a_table_with_a_line_per_failed_or_interrupted_run_with_a_log():
    row = {"run_id": "r1", "label": "a", "state": "done", "step": 3, "steps": 3, "evals": "1/1", "job_id": "7",
           "detail": "", "log": "l1"}
    rows = [row, {**row, "run_id": "r2", "label": "b", "state": "failed", "detail": "boom " * 30, "log": "l2"},
            {**row, "run_id": "r3", "label": "c", "state": "interrupted", "detail": "ended", "log": ""}]
    lines = status_text(rows).splitlines()
    assert [h.strip() for h in lines[0].split("|")[1:-1]] == ["run_id", "label", "state", "step", "evals", "job",
                                                              "detail"]
    assert len(lines) == 2 + 3 + 1 and "| failed" in lines[3] and "boom " * 19 not in lines[3]  # detail cut to 90
    assert lines[-1] == f"b: failed: {'boom ' * 30} (log: l2)"  # in full; c has no log: no line

def _wait(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


def _step(run) -> int:
    try:
        return json.loads((run.config.run_dir() / "run.json").read_text()).get("step", 0)
    except (OSError, ValueError):
        return 0


def test_usr2_checkpoints_at_a_step_boundary_requeues_and_resumes(tmp_path):
    spec = write_spec(tmp_path, grid='path = ["noise_fm"]', steps=1000, checkpoint_every=1000)
    s = Sweep.load(spec)
    run = s.runs[0]
    (job,) = submit(s, "local")
    _wait(lambda: (run.config.run_dir() / "run.json").exists() and "starts" in
          json.loads((run.config.run_dir() / "run.json").read_text()), 60, "training to start")
    time.sleep(3)  # some steps, no periodic checkpoint (every 1000)
    # USR2 to the task, as Slurm sends it before preemption / the time limit (submitit's
    # LocalJob._interrupt signals the controller, which does not forward USR2)
    (task,) = Path(f"/proc/{job.job_id}/task/{job.job_id}/children").read_text().split()
    os.kill(int(task), signal.SIGUSR2)
    _wait(lambda: len(_starts(run)) == 2, 90, "the requeued job to resume")
    resumed_at = _starts(run)[1]
    assert 0 < resumed_at < 1000  # from the checkpoint written on the signal, not from step 0
    wait([job], 240, progress=False)
    assert status(s)[0]["state"] == "done"
    rec = json.loads((run.config.run_dir() / "run.json").read_text())
    assert rec["step"] == 1000 and [h[0] for h in rec["history"]] == list(range(1, 1001))
    assert list(state.stored_keys(s).values()) == [1]


def test_two_process_job_trains_data_parallel_with_gloo(tmp_path):
    """A job asking for 2 tasks runs torch.distributed (gloo on CPU) through submitit's environment."""
    spec = write_spec(tmp_path, grid='path = ["hdfm"]', steps=20, slurm="ntasks_per_node = 2")
    s = Sweep.load(spec)
    (job,) = submit(s, "local")
    wait([job], 240, progress=False)
    results = job.results()  # one summary per task (rank)
    assert sorted(r["rank"] for r in results) == [0, 1]
    assert results[0]["weights"] == results[1]["weights"]  # ranks stay in sync
    rec = json.loads((s.runs[0].config.run_dir() / "run.json").read_text())
    assert rec["budget"]["processes"] == 2 and rec["status"] == "done"
    assert rec["loss_first_last"][1] < rec["loss_first_last"][0]
    assert status(s)[0]["state"] == "done" and list(state.stored_keys(s).values()) == [1]


def test_a_sharded_evaluation_runs_as_shard_jobs_merged_once(tmp_path, capsys):
    """Training first, then one job per shard; the last shard merges; a re-run submits nothing; a lost
    shard is the only job resubmitted; the rows equal an unsharded evaluation of the same run."""
    from hdfm_bench.evaluation.evaluate import evaluate_run, shard_file

    spec = write_spec(tmp_path, grid='path = ["noise_fm"]', evals='steps = [3]\nshards = 2')
    assert main(["sweep", str(spec), "--executor", "debug"]) == 0
    s = Sweep.load(spec)
    run = s.runs[0]
    (e,) = run.evals
    key = e.key(run.run_id, run.final_step(False))
    assert state.stored_keys(s) == {key: 1} and [r["state"] for r in status(s)] == ["done"]
    assert all(shard_file(s.shards_dir, key, k, 2).is_file() for k in range(2))
    records = [json.loads(line)["run_id"] for line in s.jobs_file.read_text().splitlines()]
    assert records == [run.run_id, f"{run.run_id}#{key}#0", f"{run.run_id}#{key}#1"]
    stored = {r["metric"]: r["value"] for r in ResultStore(s.store).rows() if r["metric"] in ("fid", "kid", "r_hf")}
    rows, _ = evaluate_run(run.config.run_dir(), e.__class__(**{**e.__dict__, "shards": 1}))
    direct = {r["metric"]: r["value"] for r in rows if r["metric"] in ("fid", "kid", "r_hf")}
    assert stored == pytest.approx(direct, rel=1e-9)
    assert submit(s, "debug") == []  # done: nothing to submit
    # a shard lost before its merge: only that shard runs again
    store_rows = s.store.read_text()
    s.store.write_text("")
    shard_file(s.shards_dir, key, 1, 2).unlink()
    jobs = submit(s, "debug")
    assert len(jobs) == 1 and jobs[0].submission().function.shard == [0, 1]
    run_debug(jobs)
    assert state.stored_keys(s) == {key: 1} and store_rows


def test_sharded_dry_run_shows_the_shard_array(tmp_path, capsys):
    spec = write_spec(tmp_path, grid='path = ["noise_fm", "hdfm"]', evals='steps = [3]\nshards = 4')
    assert main(["sweep", str(spec), "--executor", "local", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "shards=4 (images 10 each)" in out and "shard job array: 8 task(s)" in out
    bad = write_spec(tmp_path, grid='path = ["noise_fm"]', evals='steps = [3]\nshards = 3', name="bad")
    assert main(["sweep", str(bad), "--executor", "local", "--dry-run"]) == 2
    assert "n = 40 is not divisible into 3 shards" in capsys.readouterr().err
