"""``hdfm-bench sweep``: run a sweep spec (TOML grid) as jobs: local, Slurm (job array) or debug

Expand the spec into runs (one per config hash), skip finished ones, resume unfinished ones, and submit one
job per run that trains and evaluates every [eval] setting not yet in the sweep's store. Jobs checkpoint and
requeue on Slurm's preemption / time-limit signal.
"""
from __future__ import annotations

import argparse

from hdfm_bench.sweeps.submitit_adapter import EXECUTORS

from .options import _positive_int, _positive_seconds, add_eval, add_set, add_slurm, add_spec, command_help
from .status import print_status


def add_parser(sub) -> None:
    p = sub.add_parser("sweep", **command_help(__doc__))
    add_spec(p)
    p.add_argument("--executor", required=True, choices=EXECUTORS,
                   help="where jobs run (always explicit): local subprocesses, a Slurm job array, "
                        "or in this process (debug)")
    p.add_argument("--dry-run", action="store_true", help="validate, print every run and the job array's "
                                                          "resources; submit nothing")
    p.add_argument("--check-data", action="store_true", help="with --dry-run: also open the data and reference "
                                                             "files the spec names (run it where they live)")
    p.add_argument("--retry-failed", action="store_true", help="also resubmit runs whose job failed")
    p.add_argument("--eval-only", action="store_true", help="evaluate existing checkpoints, train nothing")
    p.add_argument("--wait", action="store_true", help="slurm: wait for the jobs (local and debug always wait)")
    p.add_argument("--parallel", type=_positive_int, default=None,
                   help="local executor: jobs at once (default: the cores // cpus_per_task); the cores are shared "
                        "among them")
    p.add_argument("--timeout", type=_positive_seconds, default=None, help="seconds to wait at most (default: from the "
                                                               "time limit)")
    add_set(p, "override a [base] field (repeatable)")
    add_eval(p, "override an [eval] field, e.g. reference=ref.npz or n=10000 (repeatable)")
    add_slurm(p)
    p.set_defaults(func=cmd_sweep)


def _submit(sweep, args: argparse.Namespace) -> list:
    """Print the plan and submit what is not finished; debug and local run to the end here."""
    from hdfm_bench.sweeps.submit import plan, run_until_done, submit, wait

    todo, by_state = plan(sweep, args.retry_failed)
    counts = ", ".join(f"{len(v)} {k}" for k, v in by_state.items() if v)
    print(f"sweep '{sweep.name}': {len(sweep.runs)} run(s) ({counts}); submitting {len(todo)} via executor "
          f"'{args.executor}'" + ("" if by_state["failed"] == [] or args.retry_failed
                                  else "; failed runs need --retry-failed"))
    if args.executor in ("debug", "local"):  # training first, then the shard jobs of what it trained
        return run_until_done(sweep, args.executor, args.retry_failed, timeout_s=args.timeout,
                              parallel=args.parallel)
    jobs = submit(sweep, args.executor, args.retry_failed)
    if jobs and args.wait:
        wait(jobs, args.timeout or 60.0 * sweep.resources["time"] * max(1, len(jobs)) + 60)
    return jobs


def cmd_sweep(args: argparse.Namespace) -> int:
    """Expand a sweep spec and submit what is not finished (train + evaluate, one job per run)."""
    from hdfm_bench.sweeps.spec import Sweep
    from hdfm_bench.sweeps.submit import dry_run

    sweep = Sweep.load(args.spec, overrides=args.set or [], resources=args.slurm or [],
                       eval_overrides=args.eval or [], eval_only=True if args.eval_only else None,
                       check_data=args.check_data or not args.dry_run)
    if args.dry_run:
        print(dry_run(sweep, args.executor))
        return 0
    if args.executor == "slurm":  # before the plan is printed: nothing is submitted without the client
        from hdfm_bench.sweeps.submitit_adapter import require_slurm_client

        require_slurm_client()
    jobs = _submit(sweep, args)
    if jobs and args.executor != "debug":
        print(f"submitted job(s) {', '.join(str(j.job_id) for j in jobs)}; logs under {sweep.folder / 'jobs'}")
    if args.executor == "debug" or args.wait or args.executor == "local":
        return print_status(sweep, json_out=False)
    return 0
