"""What a sweep's runs are doing: run records, the sweep's store and submitit's job states."""
from __future__ import annotations

import json
from pathlib import Path

from hdfm_bench.core.rundir import read_record, record_problem
from hdfm_bench.evaluation.store import ResultStore

from .spec import Sweep
from .submitit_adapter import job_files, read_result, sacct_states

STATES = ("pending", "running", "done", "failed", "interrupted")


def submissions(sweep: Sweep) -> dict[str, dict]:
    """The latest job record per run id (from jobs.jsonl)."""
    latest: dict[str, dict] = {}
    if sweep.jobs_file.exists():
        for line in sweep.jobs_file.read_text().splitlines():
            try:
                rec = json.loads(line)
                latest[rec["run_id"]] = rec
            except (ValueError, KeyError, TypeError):
                continue  # a partial line from a killed writer
    return latest


def stored_keys(sweep: Sweep) -> dict[str, int]:
    """eval_key → number of row sets stored for it (1 when all is well)."""
    counts: dict[str, set] = {}
    for row in ResultStore(sweep.store).rows():
        if "eval_key" in row:
            counts.setdefault(row["eval_key"], set()).add(row.get("created"))
    return {k: len(v) for k, v in counts.items()}


def status(sweep: Sweep) -> list[dict]:
    """Per run: state (pending / running / done / failed / interrupted) with the evidence."""
    stored, subs = stored_keys(sweep), submissions(sweep)
    states = job_states(list(subs.values()))
    out = []
    for run in sweep.runs:
        rec = read_record(run.config.run_dir())
        keys = run.eval_keys(sweep.eval_only)
        n_eval = sum(k in stored for k in keys)
        trained = sweep.eval_only or rec.get("status") == "done"
        job = subs.get(run.run_id)
        js = states.get(job["job_id"]) if job else None
        row = {"run_id": run.run_id, "label": run.label, "step": rec.get("step", 0), "steps": run.config.steps,
               "evals": f"{n_eval}/{len(keys)}", "job_id": job["job_id"] if job else "",
               "executor": job["executor"] if job else "", "detail": "", "log": "", "live": False}
        if js:
            row["log"] = js.get("log", "")
        problem = record_problem(run.config.run_dir())
        if problem:
            row.update(state="failed", detail=problem)
        elif trained and n_eval == len(keys):
            row["state"] = "done"
        elif rec.get("status") == "failed":
            row.update(state="failed", detail=rec.get("error", "training failed"))
        elif js is None:
            row.update(state="pending", detail="not submitted" if not job else "no job information")
        elif js["state"] in ("pending", "running"):
            row.update(state=js["state"], detail=js.get("raw", ""), live=True)
        elif js["state"] == "error":
            row.update(state="failed", detail=js.get("error", ""))
        elif js["state"] == "ended":
            row.update(state="interrupted", detail=f"job ended {js.get('raw', '')} without a result; "
                                                    f"the next sweep resumes it")
        else:  # finished without error, yet incomplete (e.g. the spec gained evaluations)
            row.update(state="pending", detail="incomplete after its job finished")
        out.append(row)
    return out


def status_text(rows: list[dict]) -> str:
    """:func:`status` rows as a table (run, label, state, step, evaluations, job, detail), followed by one
    line per failed or interrupted run that has a log: its state, the error and the log's path."""
    from tabulate import tabulate

    table = tabulate([[r["run_id"], r["label"], r["state"], f"{r['step']}/{r['steps']}", r["evals"], r["job_id"],
                       r["detail"][:90]] for r in rows],
                     headers=["run_id", "label", "state", "step", "evals", "job", "detail"], tablefmt="github")
    problems = [f"{r['label']}: {r['state']}: {r['detail']} (log: {r['log']})" for r in rows
                if r["state"] in ("failed", "interrupted") and r["log"]]
    return "\n".join([table, *problems])


def job_states(records: list[dict]) -> dict[str, dict]:
    """job_id → {state: pending | running | success | error | ended, raw, error, log}.

    Result pickles (written by submitit in the job folder) decide success / error; otherwise
    Slurm jobs are asked through submitit (sacct) and local jobs by their controller's PID.
    """
    out, slurm = {}, []
    for rec in records:
        files = job_files(rec["folder"], rec["job_id"])
        info = {"log": str(files["stderr"])}
        if files["result"].exists():
            outcome, error = read_result(files["result"])
            info["state"] = outcome
            if outcome == "error":
                info["error"] = error
        elif rec["executor"] == "slurm":
            slurm.append(rec)
            info["state"] = "unknown"
        elif rec["executor"] == "local":
            alive = _pid_alive(int(rec["job_id"]))
            info.update(state="running" if alive else "ended", raw="" if alive else "(process gone)")
        elif rec.get("outcome") == "interrupted":  # a debug job stopped by Ctrl-C / SIGTERM (submit.run_debug)
            info.update(state="ended", raw="(in-process debug job, stopped)")
        elif rec.get("outcome") == "error":  # a debug job that failed (recorded by submit.run_debug)
            info.update(state="error", error=rec.get("error", "job failed"))
        else:  # debug jobs run in-process and leave no result file: judged by the run's records
            info.update(state="success", raw="(in-process debug job)")
        out[rec["job_id"]] = info
    if slurm:
        raw = sacct_states([r["job_id"] for r in slurm], slurm[0]["folder"])
        for rec in slurm:
            s = raw.get(rec["job_id"], "UNKNOWN")
            base = s.split()[0] if s else "UNKNOWN"
            if base in ("PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SUSPENDED", "UNKNOWN"):
                state = "pending"
            elif base in ("RUNNING", "COMPLETING", "CONFIGURING", "STAGE_OUT", "SIGNALING"):
                state = "running"
            elif base == "COMPLETED":  # completed but no pickle yet: it is being written
                state = "running"
            else:
                state = "ended"
            out[rec["job_id"]].update(state=state, raw=s)
    return out


def _pid_alive(pid: int) -> bool:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"submitit" in cmd


def sweep_frame(sweep: Sweep, with_setting: bool = True):
    """The sweep's rows from its store, labelled by the current spec (for ``hdfm-bench table``): the
    run's label plus, with ``with_setting``, the evaluation setting's (``--best`` chooses that itself)."""
    df = ResultStore(sweep.store).read()
    labels = {}
    for run in sweep.runs:
        for e, key in zip(run.evals, run.eval_keys(sweep.eval_only)):
            labels[key] = f"{run.label} {e.label if with_setting else ''}".strip()
    if df.empty or "eval_key" not in df:
        return df.iloc[0:0]
    df = df[df["eval_key"].isin(labels)].copy()
    df["method"] = df["eval_key"].map(labels)
    order = {lab: i for i, lab in enumerate(dict.fromkeys(labels.values()))}  # the spec's order
    return df.sort_values("method", key=lambda col: col.map(order), kind="stable")


__all__ = ["STATES", "submissions", "stored_keys", "status", "status_text", "job_states", "sweep_frame"]
