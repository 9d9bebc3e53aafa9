"""Every use of submitit, its private parts included, in one small module.

The sweep machinery needs a few things submitit does not export: the name of the preemption
signal, the paths of a job's result pickle and log, the header of the sbatch script it would
write, the list of valid SlurmExecutor parameters and a logger that does not write into a
redirected stderr. They are reached here only, so a submitit upgrade is checked in one place
(``tests/sweeps/test_submitit_adapter.py`` exercises each).
"""
from __future__ import annotations

import contextlib
import importlib
import io
import os
import pickle
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hdfm_bench.core.messages import last_line

#: the executors a sweep can use (never AutoExecutor: it picks Slurm whenever srun exists)
EXECUTORS = ("local", "slurm", "debug")
#: parameters checked as non-negative integers
INTEGER_RESOURCES = ("time", "cpus_per_task", "gpus_per_node", "ntasks_per_node", "nodes", "array_parallelism")


class AdapterError(ValueError):
    """An executor that cannot be used here, or a submission Slurm refused; one line."""


def _submitit(module: str = ""):
    """submitit (or one of its modules), imported on first use: importing it configures logging,
    which only commands that submit or inspect jobs should pay for."""
    return importlib.import_module(f"submitit{module}")


def valid_slurm_parameters() -> set[str]:
    """The keyword names ``submitit.SlurmExecutor.update_parameters`` accepts."""
    return set(_submitit().SlurmExecutor._valid_parameters())


def missing_slurm_commands() -> list[str]:
    return [c for c in ("srun", "sbatch", "sacct") if shutil.which(c) is None]


def require_slurm_client() -> None:
    """AdapterError (one line) when the Slurm client commands are not on PATH."""
    missing = missing_slurm_commands()
    if missing:
        raise AdapterError(f"executor 'slurm' needs the Slurm client on PATH ({', '.join(missing)} not found); "
                           f"use --executor local to run here")


def job_resources(resources: dict[str, Any]) -> dict[str, Any]:
    """The resources as submitted: several GPUs per node mean one task (process) per GPU."""
    res = dict(resources)
    if res.get("gpus_per_node", 0) > 1:
        res.setdefault("ntasks_per_node", res["gpus_per_node"])
    return res


def make_executor(kind: str, folder: Path, resources: dict[str, Any], job_name: str):
    """The submitit executor named ``kind`` writing its job files under ``folder``."""
    res = job_resources(resources)
    if kind not in EXECUTORS:
        raise AdapterError(f"unknown executor '{kind}'; known: {', '.join(EXECUTORS)}")
    if kind == "slurm":
        require_slurm_client()
        ex = _submitit().SlurmExecutor(folder=folder)
        res.setdefault("job_name", job_name)
        ex.update_parameters(**res)
    elif kind == "local":
        ex = _submitit().LocalExecutor(folder=folder)
        ex.update_parameters(timeout_min=res["time"], tasks_per_node=res.get("ntasks_per_node", 1),
                             gpus_per_node=res.get("gpus_per_node", 0),
                             **({"signal_delay_s": res["signal_delay_s"]} if "signal_delay_s" in res else {}))
    else:
        ex = _submitit().DebugExecutor(folder=folder)
    return ex


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keep sbatch's refusal (which submitit prints to sys.stderr, then raises) out of the terminal:
    it is reported once, as our one-line error. submitit's log handler is created first, bound to
    the real stderr, not to the buffer."""
    _submitit(".core.logger").get_logger()
    with contextlib.redirect_stderr(io.StringIO()):
        yield


def submit_all(executor, kind: str, jobs: list) -> list:
    """Submit callables; on Slurm and local executors as one batch (a job array)."""
    if kind == "debug":
        return [executor.submit(j) for j in jobs]
    try:
        with _quiet(), executor.batch():
            return [executor.submit(j) for j in jobs]
    except Exception as err:  # sbatch refused (bad partition, resources ...): nothing was queued
        lines = [ln.split("error:", 1)[-1].strip() for ln in str(err).splitlines() if "error:" in ln]
        raise AdapterError(f"submission refused: {'; '.join(dict.fromkeys(lines)) or str(err).strip()}"[:500]) from None


def run_debug_job(job) -> str | None:
    """Run a DebugExecutor job here, as submitit's ``DebugJob.results`` does (the job's environment),
    but without its post-mortem debugger: under a terminal a failing job would hang at ``(Pdb)``.
    Returns None on success, else the error's last line; a success is cached on the job."""
    submission = job._submission
    if submission.done():
        return None
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(job.environ)
    try:
        submission.result()
        return None
    except Exception as err:
        return last_line(err)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def sbatch_header(folder: Path, count: int, resources: dict[str, Any], job_name: str) -> list[str]:
    """The ``#SBATCH`` lines of the array script submitit would write for ``count`` jobs."""
    make_sbatch_string = _submitit(".slurm.slurm")._make_sbatch_string
    params = job_resources(resources)
    params.setdefault("job_name", job_name)
    script = make_sbatch_string(command="python -u -m submitit.core._submit <folder>", folder=str(folder),
                                 map_count=count, **params)
    return [ln for ln in script.splitlines() if ln.startswith("#SBATCH")]


# ---- inside a job --------------------------------------------------------------------------------------

def job_environment():
    """submitit's JobEnvironment inside a submitit job, else None."""
    try:
        env = _submitit().JobEnvironment()
        _ = env.global_rank
        return env
    except Exception:  # not inside a submitit job (a direct call)
        return None


def preemption_signal() -> int:
    """The signal submitit's handler treats as preemption / time limit (USR2 by default)."""
    return _submitit(".core.job_environment").JobEnvironment._usr_sig()


def in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def init_distributed() -> tuple[int, int]:
    """torch.distributed from submitit's environment (one process per task, env:// init, collectives
    with a timeout); returns (rank, world size)."""
    import torch

    from hdfm_bench.training.distributed import start_group

    cuda = torch.cuda.is_available()
    env = _submitit(".helpers").TorchDistributedEnvironment().export(set_cuda_visible_devices=cuda)
    if cuda:
        torch.cuda.set_device(0)  # CUDA_VISIBLE_DEVICES now holds this rank's GPU only
    start_group(env.rank, env.world_size)
    return env.rank, env.world_size


def processes(resources: dict[str, Any]) -> int:
    """Processes of one training job: nodes × tasks per node."""
    res = job_resources(resources)
    return max(1, res.get("nodes", 1)) * max(1, res.get("ntasks_per_node", 1))


def requeue(job) -> Any:
    """What a checkpointable job's ``checkpoint`` returns: resubmit the same callable."""
    return _submitit(".helpers").DelayedSubmission(job)


# ---- job state -----------------------------------------------------------------------------------------

def job_files(folder: str, job_id: str) -> dict[str, Path]:
    """The stderr log and result pickle of task 0 of a job."""
    paths = _submitit(".core.utils").JobPaths(folder, job_id=job_id, task_id=0)
    return {"stderr": Path(paths.stderr), "result": Path(paths.result_pickle)}


def read_result(path: Path) -> tuple[str, str]:
    """(outcome, payload text) of a result pickle: ("success", ...) or ("error", last error line)."""
    try:
        with open(path, "rb") as fh:
            outcome, payload = pickle.load(fh)
    except Exception as err:  # a damaged pickle
        return "error", f"unreadable result {path}: {err}"
    if outcome == "success":
        return "success", ""
    lines = [ln for ln in str(payload).strip().splitlines() if ln.strip()]
    return "error", lines[-1] if lines else "job failed"


def sacct_states(job_ids: list[str], folder: str) -> dict[str, str]:
    """Slurm states of jobs through submitit's watcher (one forced sacct call for all jobs)."""
    jobs = [_submitit().SlurmJob(folder=folder, job_id=j) for j in job_ids]
    try:
        jobs[0].get_info(mode="force")
    except Exception:
        return {}
    return {j.job_id: j.watcher.get_state(j.job_id, mode="cache") for j in jobs}


__all__ = ["EXECUTORS", "INTEGER_RESOURCES", "AdapterError", "valid_slurm_parameters", "missing_slurm_commands",
           "make_executor", "require_slurm_client",
           "submit_all", "run_debug_job", "sbatch_header", "job_environment", "preemption_signal",
           "in_main_thread", "init_distributed", "processes", "job_resources", "requeue", "job_files", "read_result",
           "sacct_states"]
