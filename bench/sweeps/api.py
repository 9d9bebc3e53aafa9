"""Everything a caller of the sweep machinery uses, in one namespace (``from hdfm_bench.sweeps import api``)."""
from . import state
from .job import SweepJob
from .spec import Sweep, SweepError, SweepRun
from .state import STATES, job_states, status, stored_keys, submissions, sweep_frame
from .submit import dry_run, make_executor, plan, run_debug, run_until_done, shard_plan, submit, wait
from .submitit_adapter import EXECUTORS

__all__ = ["state", "SweepJob", "Sweep", "SweepError", "SweepRun",
           "STATES", "job_states", "status", "stored_keys", "submissions", "sweep_frame", "dry_run",
           "make_executor", "plan", "run_debug", "run_until_done", "shard_plan", "submit", "wait", "EXECUTORS"]
