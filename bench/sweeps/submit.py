"""Submitting a sweep: which runs need a job, one job array for them, waiting, dry runs."""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import signal
import sys
import time
from pathlib import Path

from tabulate import tabulate
from tqdm.auto import tqdm

from hdfm_bench.core.config import RunConfig
from hdfm_bench.core.io import append_line
from hdfm_bench.core.rundir import read_record
from hdfm_bench.core.signals import Terminated
from hdfm_bench.core.threads import available_cores, share
from hdfm_bench.evaluation.evaluate import shard_file
from hdfm_bench.tasks import TaskError, get_task

from . import owner
from . import submitit_adapter as adapter
from .job import SweepJob
from .spec import Sweep, SweepError, SweepRun
from .state import STATES, job_states, stored_keys, submissions
from .state import status as sweep_status


def make_executor(kind: str, sweep: Sweep, resources: dict | None = None):
    """The submitit executor named ``kind`` for ``sweep`` (job files under <folder>/jobs/<job id>)."""
    try:
        return adapter.make_executor(kind, sweep.folder / "jobs" / "%j", resources or sweep.resources, sweep.job_name)
    except adapter.AdapterError as err:
        raise SweepError(str(err)) from None


def plan(sweep: Sweep, retry_failed: bool = False) -> tuple[list[SweepRun], dict[str, list[str]]]:
    """Which runs to submit now, and why the others are not."""
    by_state: dict[str, list[str]] = {s: [] for s in STATES}
    todo = []
    status = {s["run_id"]: s for s in sweep_status(sweep)}
    for run in sweep.runs:
        st = status[run.run_id]
        by_state[st["state"]].append(run.label)
        if st["state"] == "done" or st["live"]:  # finished, or a job is queued / running for it
            continue
        if st["state"] == "failed" and not retry_failed:
            continue
        todo.append(run)
    return todo, by_state


def _trained(sweep: Sweep, run: SweepRun) -> bool:
    return sweep.eval_only or read_record(run.config.run_dir()).get("status") == "done"


def shard_plan(sweep: Sweep, retry_failed: bool = False) -> list[tuple[SweepRun, int, int]]:
    """The shard jobs a sweep needs now: (run, setting index, shard k), k = -1 for a merge whose shards
    all exist. A shard with a valid file, a key already stored, or a job queued or running is skipped."""
    stored, subs = stored_keys(sweep), submissions(sweep)
    states = job_states([s for key, s in subs.items() if "#" in key])
    out = []
    for run in sweep.runs:
        step = run.final_step(sweep.eval_only)
        for i, e in enumerate(run.evals):
            if e.shards == 1:
                continue
            key = e.key(run.run_id, step)
            if key in stored:
                continue
            todo = []
            for k in range(e.shards):
                if shard_file(sweep.shards_dir, key, k, e.shards).is_file():
                    continue
                job = subs.get(shard_job_id(run.run_id, key, k))
                js = states.get(job["job_id"]) if job else None
                if js and (js["state"] in ("pending", "running") or (js["state"] == "error" and not retry_failed)):
                    continue
                todo.append(k)
            out += [(run, i, k) for k in (todo or [-1])]
    return out


def shard_job_id(run_id: str, key: str, shard: int) -> str:
    """How a shard job is recorded in jobs.jsonl (the run's own record keeps the run id)."""
    return f"{run_id}#{key}#{shard}"


def submit(sweep: Sweep, executor: str, retry_failed: bool = False, *, limit: int | None = None,
           threads: int | None = None, attempts: dict[str, int] | None = None, max_attempts: int = 0) -> list:
    """Submit what the sweep needs now, as job arrays; record the jobs only once sbatch accepted them.

    First array: runs to train (and their unsharded evaluations). Second array: one job per missing
    shard of each sharded evaluation of a trained run — on Slurm also for the runs the first array
    trains, then held until it ends (``afterok``); elsewhere they follow on the next call.
    ``limit`` caps the jobs of this call (the local executor's free slots); ``threads`` is each job's
    CPU threads (default: ``cpus_per_task``); ``attempts`` counts submissions per run / shard and,
    with ``max_attempts``, stops one that keeps ending unfinished from being submitted again."""
    attempts = {} if attempts is None else attempts
    fresh = lambda key: not max_attempts or attempts.get(key, 0) < max_attempts
    todo, _ = plan(sweep, retry_failed)
    shard_tasks = shard_plan(sweep, retry_failed)
    todo = [r for r in todo if (not _trained(sweep, r) or _unsharded_missing(sweep, r)) and fresh(r.run_id)]
    todo = todo[:limit] if limit is not None else todo
    threads = threads or int(sweep.resources.get("cpus_per_task", 1))
    jobs = []
    if todo:
        jobs_in = [_job(sweep, r, threads, train=not sweep.eval_only) for r in todo]
        jobs = _submit(sweep, executor, jobs_in, [(r.run_id, r.label) for r in todo])
    training = {r.run_id for r in todo}
    ready = [t for t in shard_tasks if _trained(sweep, t[0]) or (executor == "slurm" and t[0].run_id in training)]
    keys = [(shard_job_id(run.run_id, run.evals[i].key(run.run_id, run.final_step(sweep.eval_only)), k),
             f"{run.label} shard {k}") for run, i, k in ready]
    chosen = [(t, key) for t, key in zip(ready, keys) if fresh(key[0])]
    chosen = chosen[:max(0, limit - len(todo))] if limit is not None else chosen
    if chosen:
        after = jobs[0].job_id.split("_")[0] if jobs and executor == "slurm" else None
        eval_threads = threads if limit is not None else int(sweep.eval_resources.get("cpus_per_task", 1))
        jobs_in = [dataclasses.replace(_job(sweep, run, eval_threads, train=False),
                                       shard=[i, k], shards_dir=str(sweep.shards_dir)) for (run, i, k), _ in chosen]
        jobs += _submit(sweep, executor, jobs_in, [key for _, key in chosen], after=after,
                        resources=sweep.eval_resources)
    for key in [r.run_id for r in todo] + [key[0] for _, key in chosen]:
        attempts[key] = attempts.get(key, 0) + 1
    return jobs


def local_slots(sweep: Sweep, parallel: int | None = None) -> tuple[int, int]:
    """(jobs the local executor runs at once, CPU threads of each process): by default as many jobs as
    the cores hold at ``cpus_per_task`` cores per process; the cores are divided among them."""
    per_job = max(1, int(sweep.resources.get("ntasks_per_node", 1) or 1))
    cores = available_cores()
    if parallel is None:
        parallel = max(1, cores // (max(1, int(sweep.resources.get("cpus_per_task", 1))) * per_job))
    if isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1:
        raise SweepError(f"parallel must be a positive integer, got {parallel!r}")
    return parallel, share(cores, parallel * per_job)


def _unsharded_missing(sweep: Sweep, run: SweepRun) -> bool:
    stored = stored_keys(sweep)
    step = run.final_step(sweep.eval_only)
    return any(e.shards == 1 and e.key(run.run_id, step) not in stored for e in run.evals)


def _job(sweep: Sweep, run: SweepRun, threads: int, train: bool) -> SweepJob:
    return SweepJob(sweep=sweep.name, config=run.config.to_dict(), label=run.label,
                    evals=[dataclasses.asdict(e) for e in run.evals], store=str(sweep.store), threads=threads,
                    train=train)


def _submit(sweep: Sweep, executor: str, jobs_in: list, records: list[tuple[str, str]], after: str | None = None,
            resources: dict | None = None):
    ex = make_executor(executor, sweep, resources)
    if after is not None:  # Slurm: hold the array until the training array has ended well
        ex.update_parameters(additional_parameters={"dependency": f"afterok:{after}"})
    local = executor == "local"
    if local:  # the command owns its local jobs: they stop when it is stopped or dies (sweeps.owner)
        me = owner.this_process()
        jobs_in = [dataclasses.replace(j, owner=me, stop_file=str(sweep.folder / "jobs" / owner.STOP_FILE))
                   for j in jobs_in]
    try:
        with owner.detached() if local else contextlib.nullcontext():
            jobs = adapter.submit_all(ex, executor, jobs_in)
    except adapter.AdapterError as err:  # nothing was queued, so nothing is recorded
        raise SweepError(str(err)) from None
    now = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    for (run_id, label), job in zip(records, jobs):
        job.hdfm_record = {"run_id": run_id, "label": label, "job_id": str(job.job_id), "executor": executor,
                           "folder": str(sweep.folder / "jobs" / "%j"), "submitted": now}
        append_line(sweep.jobs_file, json.dumps(job.hdfm_record))
    return jobs


def run_until_done(sweep: Sweep, executor: str, retry_failed: bool = False, timeout_s: float | None = None,
                   rounds: int = 3, parallel: int | None = None, progress: bool = True) -> list:
    """Run what can run now, here, until nothing is left: training first, then the shard jobs of the
    runs it trained. Debug: in this process, one after another. Local: at most ``parallel`` jobs at
    once (default :func:`local_slots`), a new one started as soon as one ends, each with its share of
    the cores. A run or shard is submitted at most ``rounds`` times. Returns every job submitted."""
    if executor == "debug":
        done: list = []
        for _ in range(rounds):
            jobs = submit(sweep, executor, retry_failed)
            if not jobs:
                break
            run_debug(jobs, sweep.jobs_file)
            done += jobs
            retry_failed = False  # a job that failed in this call is reported, not retried in a loop
        return done
    slots, threads = local_slots(sweep, parallel)
    owner.clear(sweep.folder / "jobs")
    deadline = time.monotonic() + (timeout_s or 60.0 * sweep.resources["time"] * max(1, len(sweep.runs)) + 60)
    submitted: list = []
    running: list = []
    attempts: dict[str, int] = {}
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGHUP)}
    signal.signal(signal.SIGHUP, _hang_up)
    try:
        with tqdm(total=0, desc=f"sweep: jobs done ({slots} at a time)", unit="job", disable=not progress) as bar:
            while True:
                running = [j for j in running if not j.done()]
                if len(running) < slots:
                    new = submit(sweep, executor, retry_failed, limit=slots - len(running), threads=threads,
                                 attempts=attempts, max_attempts=rounds)
                    retry_failed = False
                    running += new
                    submitted += new
                    bar.total = len(submitted)
                bar.update(len(submitted) - len(running) - bar.n)
                if not running:
                    return submitted
                if time.monotonic() > deadline:
                    raise SweepError(f"{len(running)} job(s) still unfinished after {timeout_s or 0:.0f} s "
                                     f"(they keep running; check 'hdfm-bench status')")
                time.sleep(1.0)
    except (KeyboardInterrupt, Terminated):  # Ctrl-C, SIGTERM, SIGHUP: the jobs stop too, at a safe point
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the stopping short
        for line in owner.stop_jobs(sweep.folder / "jobs", [j for j in running if not j.done()]):
            print(f"hdfm-bench: {line}", file=sys.stderr, flush=True)
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _hang_up(signum, frame) -> None:
    raise Terminated()


def wait(jobs: list, timeout_s: float, progress: bool = True) -> None:
    """Poll until every job is done or the deadline passes (submitit's own wait has no timeout)."""
    deadline = time.monotonic() + timeout_s
    with tqdm(total=len(jobs), desc="sweep: jobs done", unit="job", disable=not progress) as bar:
        while True:
            done = sum(1 for j in jobs if j.done())
            bar.update(done - bar.n)
            if done == len(jobs):
                return
            if time.monotonic() > deadline:
                raise SweepError(f"{len(jobs) - done} job(s) still unfinished after {timeout_s:.0f} s "
                                 f"(they keep running; check 'hdfm-bench status')")
            time.sleep(1.0)


def run_debug(jobs: list, jobs_file: Path | None = None) -> list[str]:
    """Debug executor: run each job in this process, one after another (an error in one does not stop
    the others, and never opens a debugger). A failure is printed and recorded in the sweep's
    jobs.jsonl (outcome = error, the error's last line), where ``status`` finds it. Returns the errors."""
    errors = []
    for job in jobs:
        try:
            error = adapter.run_debug_job(job)
        except (KeyboardInterrupt, Terminated):  # Ctrl-C / SIGTERM: recorded, so status says interrupted
            rec = getattr(job, "hdfm_record", None)
            if rec is not None and jobs_file is not None:
                append_line(jobs_file, json.dumps({**rec, "outcome": "interrupted"}))
            raise
        if error is None:
            continue
        errors.append(error)
        rec = getattr(job, "hdfm_record", None)
        print(f"sweep: job {rec['label'] if rec else job.job_id} failed: {error}", file=sys.stderr)
        if rec is not None and jobs_file is not None:
            append_line(jobs_file, json.dumps({**rec, "outcome": "error", "error": error}))
    return errors


def _data_present(cfg: RunConfig) -> bool:
    try:
        get_task(cfg.task, **cfg.task_params)
        return True
    except TaskError:
        return False


def dry_run(sweep: Sweep, executor: str) -> str:
    """Every resolved run, its evaluations, and the job array with its resources (sbatch script)."""
    rows = [[r.run_id, r.label, r.config.task, r.config.backbone, r.config.steps, r.config.batch_size,
             len(r.evals)] for r in sweep.runs]
    text = [f"sweep '{sweep.name}' ({sweep.spec_path}): {len(sweep.runs)} run(s), "
            f"{sum(len(r.evals) for r in sweep.runs)} evaluation(s); store {sweep.store}",
            tabulate(rows, headers=["run_id", "label", "task", "backbone", "steps", "batch", "evals"],
                     tablefmt="github")]
    groups: dict[str, tuple[list, list[str]]] = {}  # runs sharing one list of evaluation settings
    for r in sweep.runs:
        key = json.dumps([dataclasses.asdict(e) for e in r.evals], sort_keys=True, default=str)
        groups.setdefault(key, (r.evals, []))[1].append(r.label)
    for evals, labels in groups.values():
        who = "every run" if len(groups) == 1 else ", ".join(dict.fromkeys(labels))
        text += ["", f"evaluation settings ({who}):"]
        text += [f"  {e.sampler} steps={e.steps or 'default'} cfg={e.cfg_scale:g} ema={e.ema} seed={e.seed} n={e.n}"
                 f" extractor={e.extractor or 'task default'}"
                 f" reference={e.reference or e.reference_split or 'task default'}"
                 + (f" shards={e.shards} (images {e.n // e.shards} each)" if e.shards > 1 else "")
                 for e in evals]
    absent = sorted({f"{r.config.task} {r.config.task_params}" for r in sweep.runs
                     if not _data_present(r.config)})
    if absent:
        text.append(f"\ndata not on this machine (names and shapes checked, files not): {'; '.join(absent)}")
    res = dict(sweep.resources)
    text.append(f"\njob array: {len(sweep.runs)} task(s) via executor '{executor}' (train each run, then its "
                f"unsharded evaluations); resources: " + ", ".join(f"{k}={v}" for k, v in res.items()))
    world = adapter.processes(res)
    if world > 1:
        per_node = adapter.job_resources(res).get("ntasks_per_node", 1)
        batches = sorted({r.config.batch_size for r in sweep.runs})
        text.append(f"data parallel: {world} processes per training job ({res.get('nodes', 1)} node(s) × {per_node} "
                    f"task(s), one per GPU; DistributedDataParallel over torch.distributed from submitit's "
                    f"environment); each process takes {', '.join(str(b // world) for b in batches)} images of "
                    "every global batch")
    if executor == "slurm":
        text += ["sbatch script header:"] + adapter.sbatch_header(sweep.folder / "jobs" / "%j", len(sweep.runs),
                                                                  res, sweep.job_name)
    shards = sum(e.shards for r in sweep.runs for e in r.evals if e.shards > 1)
    if shards:
        text.append(f"\nshard job array: {shards} task(s) (one per shard of each sharded evaluation of each run; "
                    "each writes its shard file and the last one merges the rows)"
                    + ("; held until the training array ends (--dependency=afterok:<array>)" if executor == "slurm"
                       else "; submitted once the runs are trained"))
        if executor == "slurm":
            text += ["sbatch script header:"] + adapter.sbatch_header(sweep.folder / "jobs" / "%j", shards,
                                                                      sweep.eval_resources, sweep.job_name)
    return "\n".join(text)


__all__ = ["make_executor", "plan", "shard_plan", "submit", "local_slots", "run_until_done", "wait", "run_debug",
           "dry_run"]
