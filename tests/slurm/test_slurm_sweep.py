"""Integration: a sweep as a job array on a real Slurm cluster (tests/slurm/local_cluster.sh).

One job is preempted (USR2 → checkpoint → submitit requeue) and one is cancelled while training;
re-running the sweep resubmits only the cancelled run; every run ends done with exactly one set of
rows, both interrupted runs resumed from a checkpoint, and their numbers equal those of uninterrupted
runs through the local executor.
Skips (with the reason) where no cluster answers; fails instead under HDFM_BENCH_REQUIRE_SLURM=1.
"""
import json
import os
import shutil
import subprocess
import time

import pytest

from hdfm_bench.cli import main
from hdfm_bench.sweeps import state
from hdfm_bench.sweeps.spec import Sweep
from hdfm_bench.sweeps.state import status, sweep_frame
from hdfm_bench.sweeps.submit import submit, wait
from tests.sweeps.test_sweeps import write_spec


def _unavailable() -> str | None:
    if os.environ.get("HDFM_BENCH_SLURM_UNAVAILABLE"):
        return os.environ["HDFM_BENCH_SLURM_UNAVAILABLE"]
    if shutil.which("srun") is None:
        return ("no Slurm client on PATH; run the tests through scripts/test.sh as root, which starts "
                "a local cluster (tests/slurm/local_cluster.sh up)")
    try:
        subprocess.run(["srun", "-N1", "-n1", "true"], check=True, timeout=20, capture_output=True)
    except (subprocess.SubprocessError, OSError) as err:
        return f"the Slurm cluster does not run 'srun true': {err}"
    return None


@pytest.fixture(scope="module", autouse=True)
def slurm_cluster():
    reason = _unavailable()
    if reason:
        if os.environ.get("HDFM_BENCH_REQUIRE_SLURM"):
            pytest.fail(f"Slurm integration tests required here, but: {reason}")
        pytest.skip(reason)


def _wait(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n"
                                 + subprocess.run(["squeue"], capture_output=True, text=True).stdout)
        time.sleep(0.5)


def _record(run) -> dict:
    try:
        return json.loads((run.config.run_dir() / "run.json").read_text())
    except (OSError, ValueError):
        return {}


def _squeue(job_id: str) -> str:
    return subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T %r"], capture_output=True, text=True).stdout


def test_rejected_resources_leave_nothing_recorded(tmp_path, capsys):
    spec = write_spec(tmp_path)
    for bad, needle in (("partition=nope", "invalid partition"), ("mem=100000GB", "node configuration")):
        assert main(["sweep", str(spec), "--executor", "slurm", "--slurm", bad]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("hdfm-bench: error: submission refused") and needle in err.lower(), err
        assert "\n" not in err
        assert not (tmp_path / "sweep" / "jobs.jsonl").exists()


def test_sweep_array_survives_preemption_and_cancel_and_matches_local(tmp_path, capsys):
    t0 = time.monotonic()
    grid = 'path = ["noise_fm", "hdfm"]\ntarget = ["x", "v"]'
    spec = write_spec(tmp_path, grid=grid, steps=400, checkpoint_every=25, evals="steps = [6]",
                      slurm='mem = "1500MB"\narray_parallelism = 4')
    sweep = Sweep.load(spec)
    assert len(sweep.runs) == 4
    assert main(["sweep", str(spec), "--executor", "slurm"]) == 0
    jobs = {r["run_id"]: r["job_id"] for r in state.submissions(sweep).values()}
    assert len(jobs) == 4 and all("_" in j for j in jobs.values())  # one job array
    preempted, cancelled = sweep.runs[0], sweep.runs[1]
    _wait(lambda: _record(preempted).get("step", 0) >= 50 and _record(cancelled).get("step", 0) >= 50, 180,
          "two runs to pass step 50")
    subprocess.run(["scancel", "--signal=USR2", jobs[preempted.run_id]], check=True)  # preemption notice
    subprocess.run(["scancel", jobs[cancelled.run_id]], check=True)  # killed
    # submitit checkpointed and requeued the preempted job; Slurm holds a requeued job for a while
    # (reason BeginTime): release it now so the test does not wait for that delay.
    _wait(lambda: "PENDING" in _squeue(jobs[preempted.run_id]) or len(_record(preempted).get("starts", [])) == 2,
          60, "the preempted job to be requeued")
    subprocess.run(["scontrol", "update", f"JobId={jobs[preempted.run_id]}", "StartTime=now"], capture_output=True)
    states = lambda: [r["state"] for r in status(sweep)]
    _wait(lambda: states() == ["done", "interrupted", "done", "done"], 300, "the array to settle")
    first_pass = time.monotonic() - t0
    # re-run: only the cancelled run is submitted; it resumes from its checkpoint
    capsys.readouterr()
    assert main(["sweep", str(spec), "--executor", "slurm", "--wait", "--timeout", "300"]) == 0
    assert "submitting 1 via executor 'slurm'" in capsys.readouterr().out
    assert states() == ["done"] * 4
    for run in (preempted, cancelled):
        starts = _record(run)["starts"]
        assert len(starts) == 2 and starts[0] == 0 and 0 < starts[1] < 400, starts
    assert [_record(r)["starts"] for r in sweep.runs[2:]] == [[0], [0]]
    assert all(_record(r)["step"] == 400 for r in sweep.runs)
    keys = state.stored_keys(sweep)
    assert sorted(keys) == sorted(k for r in sweep.runs for k in r.eval_keys(False)) and set(keys.values()) == {1}
    slurm_total = time.monotonic() - t0

    # the two interrupted runs again through the local executor, uninterrupted (fresh runs, own store): the
    # same numbers, so preemption and cancellation changed nothing (the other two ran plainly; not repeated)
    local = tmp_path / "local"
    local.mkdir()
    local_spec = write_spec(local, grid='path = ["noise_fm"]\ntarget = ["x", "v"]', steps=400, checkpoint_every=25,
                            evals="steps = [6]", slurm='mem = "1500MB"')
    assert [r.run_id for r in Sweep.load(local_spec).runs] == [preempted.run_id, cancelled.run_id]
    t1 = time.monotonic()
    assert main(["sweep", str(local_spec), "--executor", "local", "--timeout", "400"]) == 0
    local_total = time.monotonic() - t1
    key = ["run_id", "metric", "protocol_json"]  # protocol: e.g. the t of each trajectory point (method labels
    # name only the axes a sweep varies, so they differ between the two sweeps)
    a = sweep_frame(sweep).set_index(key)["value"]
    b = sweep_frame(Sweep.load(local_spec)).set_index(key)["value"]
    assert a.index.is_unique and b.index.is_unique
    assert set(b.index) <= set(a.index) and len(b) > 20 and len(a) > len(b)
    rel = ((a.loc[b.index] - b).abs() / b.abs().clip(lower=1e-6)).max()
    assert rel < 1e-4, f"slurm and local tables differ (max relative difference {rel:.2e})"
    print(f"\n[slurm timings] first pass (preempt + cancel) {first_pass:.0f} s, until all done "
          f"{slurm_total:.0f} s; local executor {local_total:.0f} s; max rel. table difference {rel:.1e}")


def test_two_task_job_trains_data_parallel_like_one_process(tmp_path):
    """A job with 2 tasks on the cluster: submitit's environment → torch.distributed (gloo) → DDP; the weights
    equal those of one process trained on the same global batches here."""
    import dataclasses

    import torch

    from hdfm_bench.training import checkpoint, train

    spec = write_spec(tmp_path, grid='path = ["hdfm"]', steps=20, slurm='ntasks_per_node = 2\nmem = "2500MB"')
    sweep = Sweep.load(spec)
    (job,) = submit(sweep, "slurm")
    wait([job], 300, progress=False)
    results = job.results()  # one summary per task
    assert sorted(r["rank"] for r in results) == [0, 1] and results[0]["weights"] == results[1]["weights"]
    run = sweep.runs[0]
    rec = _record(run)
    assert rec["status"] == "done" and rec["budget"]["processes"] == 2 and rec["step"] == 20
    assert status(sweep)[0]["state"] == "done"
    single = dataclasses.replace(run.config, out_dir=str(tmp_path / "single"))
    train(single, progress=False)
    a = checkpoint.load(run.config.run_dir() / "checkpoint.pt")["model"]
    b = checkpoint.load(single.run_dir() / "checkpoint.pt")["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-5, rtol=0, msg=k)


def test_the_installed_example_plugin_runs_through_a_slurm_sweep_into_the_table(tmp_path, capsys):
    """examples/hdfm-bench-ve, installed by the test command: its path `ve` — named nowhere but in the spec, found
    through the package's entry point — trains and is evaluated with its own sampler in Slurm jobs, and its row
    sits in the table next to a built-in one."""
    from hdfm_bench.evaluation.store import ResultStore

    spec = write_spec(tmp_path, grid='path = ["noise_fm"]', steps=4, evals='sampler = ["default"]\nsteps = [2]',
                      extra='[[include]]\npath = "ve"\ntarget = "x"\nloss = "x"\n')
    assert main(["sweep", str(spec), "--executor", "slurm", "--wait", "--timeout", "300"]) == 0
    store = tmp_path / "sweep" / "results.jsonl"
    fid = {r["path"]: r for r in ResultStore(store).rows() if r["metric"] == "fid"}
    assert set(fid) == {"ve", "noise_fm"} and fid["ve"]["protocol"]["sampler"] == "ve_ddim"
    (ve_run,) = [run for run in Sweep.load(spec).runs if run.config.path == "ve"]
    assert _record(ve_run)["status"] == "done"
    capsys.readouterr()
    assert main(["table", "--store", str(store), "--metric", "fid"]) == 0
    table = capsys.readouterr().out
    assert "| ve " in table and "| noise_fm " in table
