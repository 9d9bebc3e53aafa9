"""Reproductions run as sweeps: the quick variant of a spec, running it to completion, its rows."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pandas as pd

from hdfm_bench.evaluation.store import ResultStore
from hdfm_bench.sweeps.spec import Sweep
from hdfm_bench.sweeps.state import status
from hdfm_bench.sweeps.submit import plan, run_until_done, submit, wait

# --quick: the same pipeline on a budget that runs in a few minutes (one seed, small n)
QUICK = {"base": {"steps": 40, "batch_size": 32, "checkpoint_every": 40},
         "grid": {"seed": [0]}, "eval": {"n": 40, "steps": [5, 10]}, "include_seeds": [0]}


def quick_spec(spec: Path) -> dict:
    """``spec`` parsed, with the QUICK budget and its own sweep name (nothing shared with the full run)."""
    data = tomllib.loads(spec.read_text())
    data["name"] = data.get("name", spec.stem) + "-quick"
    data["base"].update(QUICK["base"])
    if data["base"].get("keep_every"):  # kept checkpoints at half the quick budget and at its end
        half = QUICK["base"]["steps"] // 2
        data["base"].update(checkpoint_every=half, keep_every=half)
    if "seed" in data.get("grid", {}):
        data["grid"]["seed"] = QUICK["grid"]["seed"]
    for inc in data.get("include", []):
        if "seed" in inc:
            inc["seed"] = QUICK["include_seeds"]
    data["eval"]["n"] = QUICK["eval"]["n"]
    if isinstance(data["eval"].get("steps"), list) and len(data["eval"]["steps"]) > 1:
        data["eval"]["steps"] = QUICK["eval"]["steps"]
    return data


def run_sweep(spec: Path, executor: str = "debug", sets=(), timeout: float | None = None, quick: bool = False,
              eval_sets=()):
    """Train and evaluate whatever the spec still needs; returns the loaded sweep."""
    sweep = Sweep.load(spec, overrides=sets, data=quick_spec(spec) if quick else None,
                              eval_overrides=eval_sets)
    todo, _ = plan(sweep, retry_failed=True)
    print(f"{sweep.name}: {len(sweep.runs)} run(s), {len(todo)} to train or evaluate (executor {executor})")
    if executor == "slurm":
        jobs = submit(sweep, executor, retry_failed=True)
        if jobs:
            wait(jobs, timeout or 60.0 * sweep.resources["time"] * len(jobs) + 60)
            run_until_done(sweep, executor, timeout_s=timeout)  # shard jobs held until training ended
    else:
        run_until_done(sweep, executor, retry_failed=True, timeout_s=timeout)
    failed = [r for r in status(sweep) if r["state"] != "done"]
    if failed:
        raise RuntimeError(f"{sweep.name}: {len(failed)} run(s) not done: "
                           + "; ".join(f"{r['label']} {r['state']} {r['detail']}" for r in failed[:3]))
    return sweep


def sweep_rows(sweep) -> pd.DataFrame:
    df = ResultStore(sweep.store).read()
    keys = {k for run in sweep.runs for k in run.eval_keys(sweep.eval_only)}
    return df[df["eval_key"].isin(keys)].copy()


def copy_rows(sweep, dest: Path) -> None:
    """The sweep's rows, as stored, into a fresh results store at ``dest`` (replaced at once)."""
    keys = {k for run in sweep.runs for k in run.eval_keys(sweep.eval_only)}
    ResultStore.write_fresh(dest, [r for r in ResultStore(sweep.store).rows() if r.get("eval_key") in keys])


__all__ = ["QUICK", "quick_spec", "run_sweep", "sweep_rows", "copy_rows"]
