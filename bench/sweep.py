"""Sweeps: a TOML spec → runs keyed by their config hash → submitit jobs (local, Slurm, debug).

A spec (see ``bench/specs/digits-mini.toml``)::

    name = "digits-mini"          # sweep folder sweeps/<name>/ (submitit logs, job records, store)
    [base]                        # RunConfig fields shared by every run
    task = "digits"
    [grid]                        # cartesian product: every value is a list of alternatives
    path = ["noise_fm", "hdfm"]   # "path_params.a" = [...] sweeps one parameter
    seed = [0, 1]
    [[include]]                   # explicit extra runs (merged over [base]; lists expand too)
    path = "ihdm"
    [eval]                        # evaluation axes (lists → product) and scalars
    sampler = ["default"]         # "default" = the path's own sampler
    steps = [10, 20]              # "default" = the sampler's own
    cfg_scale = [1.0, 3.0]
    ema = [0.999]                 # "none" = the raw weights
    seed = [0]
    n = 500
    [slurm]                       # submitit SlurmExecutor parameters, under submitit's names
    time = 60
    cpus_per_task = 2

Every run is a :class:`~bench.config.RunConfig`; its hash is its run id, so a sweep run again
finds its runs: finished ones are skipped, unfinished ones resume from their last checkpoint, failed
ones are resubmitted only with ``retry_failed``. One job per run (an array on Slurm) trains, then
evaluates each evaluation setting not yet in the store and appends its rows in one atomic write.
Jobs are checkpointable in submitit's sense: on the preemption / time-limit signal (USR2) the
trainer finishes its step, writes a checkpoint and submitit requeues the job, which resumes.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import itertools
import json
import os
import shutil
import signal
import time
import tomllib
from pathlib import Path
from typing import Any, Iterable

from .config import RunConfig, RunConfigError, _parse_value, apply_override

SPEC_KEYS = {"name": "sweep name (default: the file name)", "description": "free text",
             "out_dir": "folder of run directories (default: runs)",
             "folder": "sweep folder: job logs, job records (default: sweeps/<name>)",
             "store": "results store (default: <folder>/results.jsonl)",
             "eval_only": "evaluate existing checkpoints, train nothing",
             "base": "RunConfig fields of every run", "grid": "axes: lists of alternatives",
             "include": "explicit extra runs", "eval": "evaluation axes and settings",
             "slurm": "submitit SlurmExecutor parameters", "targets": "published numbers (documentation)"}
EVAL_AXES = ("sampler", "steps", "cfg_scale", "ema", "seed")
EVAL_DEFAULTS = {"sampler": ["default"], "steps": ["default"], "cfg_scale": [1.0], "ema": ["none"], "seed": [0],
                 "n": 500, "cfg_interval": [0.1, 1.0], "extractor": "", "reference_split": "",
                 "kid_subset_size": 0, "sampler_params": {}}
DEFAULT_RESOURCES = {"time": 60, "cpus_per_task": 1}
EXECUTORS = ("local", "slurm", "debug")
STATES = ("pending", "running", "done", "failed", "interrupted")


class SweepError(ValueError):
    """A bad spec, value or executor; one line naming the problem."""


# ---- the spec ----------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class EvalSetting:
    """One evaluation protocol for a run (its key identifies its rows in the store)."""

    sampler: str
    steps: int | None
    cfg_scale: float
    ema: float | None
    seed: int
    n: int
    cfg_interval: tuple
    extractor: str | None
    reference_split: str | None
    kid_subset_size: int | None
    sampler_params: dict
    label: str = ""

    def key(self, run_id: str, checkpoint_step: int) -> str:
        d = {k: v for k, v in dataclasses.asdict(self).items() if k != "label"}
        blob = json.dumps({"run": run_id, "step": checkpoint_step, **d}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def kwargs(self) -> dict:
        return {"sampler": self.sampler, "steps": self.steps, "cfg_scale": self.cfg_scale,
                "cfg_interval": self.cfg_interval, "ema": self.ema, "n": self.n, "seed": self.seed,
                "extractor": self.extractor, "reference_split": self.reference_split,
                "kid_subset_size": self.kid_subset_size, "sampler_params": self.sampler_params or None}


@dataclasses.dataclass
class SweepRun:
    config: RunConfig
    label: str
    evals: list[EvalSetting]

    @property
    def run_id(self) -> str:
        return self.config.run_id()

    def final_step(self, eval_only: bool) -> int:
        """The checkpoint step the evaluations are made at (recorded step for eval-only sweeps)."""
        if not eval_only:
            return self.config.steps
        rec = self.config.run_dir() / "run.json"
        try:
            r = json.loads(rec.read_text())
        except (OSError, ValueError):
            return -1
        return int(r.get("step", self.config.steps if r.get("status") == "done" else -1))

    def eval_keys(self, eval_only: bool) -> list[str]:
        step = self.final_step(eval_only)
        return [e.key(self.run_id, step) for e in self.evals]


@dataclasses.dataclass
class Sweep:
    name: str
    spec_path: Path
    folder: Path
    store: Path
    runs: list[SweepRun]
    resources: dict
    eval_only: bool

    @property
    def jobs_file(self) -> Path:
        return self.folder / "jobs.jsonl"

    @classmethod
    def load(cls, spec: str | Path, overrides: Iterable[str] = (), resources: Iterable[str] = (),
             eval_only: bool | None = None, check: bool = True, data: dict | None = None,
             check_data: bool = True) -> "Sweep":
        """Parse, expand and validate a spec. ``overrides``: ``key=value`` on [base];
        ``resources``: ``key=value`` on [slurm]; ``data``: the parsed spec, when a caller edited
        it (``spec`` then only names it in messages). Raises :class:`SweepError` naming the problem."""
        spec = Path(spec)
        if data is None:
            if not spec.is_file():
                raise SweepError(f"sweep spec not found: {spec}")
            try:
                data = tomllib.loads(spec.read_text())
            except tomllib.TOMLDecodeError as err:
                raise SweepError(f"{spec}: invalid TOML: {err}") from None
        unknown = sorted(set(data) - set(SPEC_KEYS))
        if unknown:
            raise SweepError(f"{spec}: unknown key(s) {', '.join(unknown)}; known: {', '.join(SPEC_KEYS)}")
        name = str(data.get("name", spec.stem))
        folder = Path(data.get("folder", Path("sweeps") / name)).absolute()
        store = Path(data.get("store", folder / "results.jsonl")).absolute()
        out_dir = str(Path(data.get("out_dir", "runs")).absolute())
        base = dict(data.get("base", {}))
        try:
            for item in overrides:
                apply_override(base, item)
        except RunConfigError as err:
            raise SweepError(str(err)) from None
        mappings = _expand(base, data.get("grid", {}), data.get("include", []), spec)
        global_eval = data.get("eval", {})
        evals = _eval_settings(global_eval, spec)
        res = {**DEFAULT_RESOURCES, **data.get("slurm", {})}
        for item in resources:
            key, value = _split_assignment(item, "--slurm")
            res[key] = value
        _check_resources(res, spec)
        eval_only = bool(data.get("eval_only", False)) if eval_only is None else eval_only
        runs, seen = [], {}
        labels = _labels(mappings)
        for mapping, label in zip(mappings, labels):
            # an [[include]] may carry its own `eval` table, merged over [eval] (e.g. a level
            # sampler whose step budget is fixed by the path: steps = ["default"])
            own_eval = mapping.pop(_RUN_EVAL, None)
            run_evals = evals if own_eval is None else _eval_settings({**global_eval, **own_eval}, spec)
            try:
                cfg = RunConfig.from_mapping({**mapping, "out_dir": out_dir}, source=str(spec))
            except RunConfigError as err:
                raise SweepError(str(err)) from None
            if cfg.run_id() in seen:
                raise SweepError(f"{spec}: runs {seen[cfg.run_id()]!r} and {label!r} resolve to the same config")
            seen[cfg.run_id()] = label
            runs.append(SweepRun(cfg, label, [_resolve_eval(e, cfg, spec) for e in run_evals]))
        sweep = cls(name, spec, folder, store, runs, res, eval_only)
        if check:
            sweep.validate(check_data)
        return sweep

    # ---- validation before anything is submitted ----
    def validate(self, check_data: bool = True) -> None:
        """Every name, parameter and combination, without building a model or reading data.

        ``check_data=False`` (dry runs): the tasks' data folders need not exist on this machine."""
        import torch

        from methods import ConfigError, Objective, get_path, get_sampler
        from tasks import get_task

        from .backbones import build_backbone

        for run in self.runs:
            cfg, where = run.config, f"{self.spec_path}: run {run.label!r}"
            try:
                task = get_task(cfg.task, check_data=check_data, **cfg.task_params)
                path = get_path(cfg.path, **cfg.path_params)
                target = Objective(path, cfg.target or None, cfg.loss or None, cfg.norm or None).target
                with torch.device("meta"):  # names and parameters checked, no memory used
                    build_backbone(cfg.backbone, shape=tuple(task.shape),
                                   num_classes=task.num_classes if cfg.conditional else 0, **cfg.backbone_params)
                for e in run.evals:
                    smp = get_sampler(e.sampler, **{**e.sampler_params, **({"steps": e.steps} if e.steps else {})})
                    smp.check(path, target)
                    if e.cfg_scale != 1.0 and not (cfg.conditional and task.num_classes):
                        raise SweepError(f"cfg_scale {e.cfg_scale} needs a class-conditional run")
                    if e.ema is not None and e.ema not in cfg.ema_decays:
                        raise SweepError(f"ema {e.ema} is not kept by the run (ema_decays {list(cfg.ema_decays)})")
            except (ConfigError, ValueError, TypeError, KeyError) as err:
                raise SweepError(f"{where}: {str(err).splitlines()[0]}") from None
        if self.eval_only:
            missing = [r.label for r in self.runs if not (r.config.run_dir() / "checkpoint.pt").exists()]
            if missing:
                raise SweepError(f"{self.spec_path}: eval-only sweep, but no checkpoint for run(s) "
                                 f"{', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}")

    # ---- state ----
    def submissions(self) -> dict[str, dict]:
        """The latest job record per run id (from jobs.jsonl)."""
        latest: dict[str, dict] = {}
        if self.jobs_file.exists():
            for line in self.jobs_file.read_text().splitlines():
                try:
                    rec = json.loads(line)
                    latest[rec["run_id"]] = rec
                except (ValueError, KeyError, TypeError):
                    continue  # a partial line from a killed writer
        return latest

    def stored_keys(self) -> dict[str, int]:
        """eval_key → number of row sets stored for it (1 when all is well)."""
        from .store import ResultStore

        counts: dict[str, set] = {}
        for row in ResultStore(self.store).rows():
            if "eval_key" in row:
                counts.setdefault(row["eval_key"], set()).add(row.get("created"))
        return {k: len(v) for k, v in counts.items()}

    def status(self) -> list[dict]:
        """Per run: state (pending / running / done / failed / interrupted) with the evidence."""
        stored, subs = self.stored_keys(), self.submissions()
        states = job_states(list(subs.values()))
        out = []
        for run in self.runs:
            rec = _read_json(run.config.run_dir() / "run.json")
            keys = run.eval_keys(self.eval_only)
            n_eval = sum(k in stored for k in keys)
            trained = self.eval_only or rec.get("status") == "done"
            job = subs.get(run.run_id)
            js = states.get(job["job_id"]) if job else None
            row = {"run_id": run.run_id, "label": run.label, "step": rec.get("step", 0), "steps": run.config.steps,
                   "evals": f"{n_eval}/{len(keys)}", "job_id": job["job_id"] if job else "",
                   "executor": job["executor"] if job else "", "detail": "", "log": "", "live": False}
            if js:
                row["log"] = js.get("log", "")
            if trained and n_eval == len(keys):
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


# ---- expansion helpers -------------------------------------------------------------------------------

def _split_assignment(item: str, what: str) -> tuple[str, Any]:
    if "=" not in item:
        raise SweepError(f"{what} '{item}' must look like key=value")
    key, raw = item.split("=", 1)
    return key.strip(), _parse_value(raw.strip())


def _set_dotted(d: dict, key: str, value: Any) -> None:
    if "." in key:
        top, sub = key.split(".", 1)
        if not isinstance(d.get(top, {}), dict):
            raise SweepError(f"'{top}' is not a table, cannot set '{key}'")
        d[top] = {**d.get(top, {}), sub: value}
    else:
        d[key] = value


def _product(base: dict, axes: dict, where: str) -> list[dict]:
    for k, v in axes.items():
        if not isinstance(v, list) or not v:
            raise SweepError(f"{where}: axis '{k}' must be a non-empty list of alternatives, got {v!r}")
    keys = list(axes)
    out = []
    for combo in itertools.product(*(axes[k] for k in keys)):
        d = json.loads(json.dumps(base))
        for k, v in zip(keys, combo):
            _set_dotted(d, k, v)
        out.append(d)
    return out


_RUN_EVAL = "\0eval"  # key of an [[include]]'s own eval table inside an expanded mapping


def _expand(base: dict, grid: dict, include: list, spec: Path) -> list[dict]:
    if not isinstance(grid, dict) or not isinstance(include, list):
        raise SweepError(f"{spec}: [grid] must be a table and [[include]] a list of tables")
    runs = _product(base, grid, f"{spec} [grid]") if grid or not include else []
    for i, extra in enumerate(include):
        extra = dict(extra)
        own_eval = extra.pop("eval", None)
        if own_eval is not None and not isinstance(own_eval, dict):
            raise SweepError(f"{spec} [[include]] #{i + 1}: 'eval' must be a table, got {own_eval!r}")
        axes = {k: v for k, v in extra.items() if isinstance(v, list) and k != "ema_decays"}
        fixed = {k: v for k, v in extra.items() if k not in axes}
        merged = json.loads(json.dumps(base))
        for k, v in fixed.items():
            _set_dotted(merged, k, v)
        expanded = _product(merged, axes, f"{spec} [[include]] #{i + 1}")
        if own_eval is not None:
            for m in expanded:
                m[_RUN_EVAL] = own_eval
        runs += expanded
    return runs


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _labels(mappings: list[dict]) -> list[str]:
    """Row labels from the axes that vary across runs (seeds excluded: they are aggregated)."""
    flats = [_flat({k: v for k, v in m.items() if k != _RUN_EVAL}) for m in mappings]
    keys = list(dict.fromkeys(k for f in flats for k in f))
    varying = [k for k in keys if k != "seed" and len({json.dumps(f.get(k), default=str) for f in flats}) > 1]
    varying.sort(key=lambda k: k != "path")  # the path name first, bare
    labels = []
    for f in flats:
        parts = [str(f[k]) if k == "path" else f"{k.split('.')[-1]}={f[k]}" for k in varying if k in f]
        labels.append(" ".join(parts) or str(f.get("path", RunConfig.path)))
    return labels


def _eval_settings(ev: dict, spec: Path) -> list[dict]:
    unknown = sorted(set(ev) - set(EVAL_DEFAULTS))
    if unknown:
        raise SweepError(f"{spec} [eval]: unknown key(s) {', '.join(unknown)}; known: {', '.join(EVAL_DEFAULTS)}")
    merged = {**EVAL_DEFAULTS, **ev}
    axes = {k: merged[k] if isinstance(merged[k], list) else [merged[k]] for k in EVAL_AXES}
    fixed = {k: merged[k] for k in EVAL_DEFAULTS if k not in EVAL_AXES}
    combos = _product(fixed, axes, f"{spec} [eval]")
    varying = [k for k in EVAL_AXES if k != "seed" and len(axes[k]) > 1]
    short = {"cfg_scale": "cfg"}
    for c in combos:
        c["label"] = " ".join(f"{short.get(k, k)}={c[k]}" for k in varying)
    return combos


def _resolve_eval(e: dict, cfg: RunConfig, spec: Path) -> EvalSetting:
    from methods import get_path

    def number(key, kind, allow_default=None):
        v = e[key]
        if allow_default is not None and v == allow_default:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (kind is int and not isinstance(v, int)):
            raise SweepError(f"{spec} [eval]: '{key}' expects {kind.__name__}"
                             f"{' or ' + repr(allow_default) if allow_default else ''}, got {v!r}")
        return kind(v)

    sampler = e["sampler"]
    if not isinstance(sampler, str):
        raise SweepError(f"{spec} [eval]: 'sampler' expects a name or 'default', got {sampler!r}")
    if sampler == "default":
        sampler = get_path(cfg.path, **cfg.path_params).default_sampler
    interval = e["cfg_interval"]
    if not (isinstance(interval, list) and len(interval) == 2):
        raise SweepError(f"{spec} [eval]: 'cfg_interval' expects [low, high], got {interval!r}")
    if not isinstance(e["sampler_params"], dict):
        raise SweepError(f"{spec} [eval]: 'sampler_params' expects a table, got {e['sampler_params']!r}")
    n = number("n", int)
    if n < 2:
        raise SweepError(f"{spec} [eval]: 'n' must be >= 2, got {n}")
    return EvalSetting(sampler=sampler, steps=number("steps", int, "default"),
                       cfg_scale=number("cfg_scale", float), ema=number("ema", float, "none"),
                       seed=number("seed", int), n=n, cfg_interval=tuple(float(v) for v in interval),
                       extractor=e["extractor"] or None, reference_split=e["reference_split"] or None,
                       kid_subset_size=number("kid_subset_size", int) or None,
                       sampler_params=dict(e["sampler_params"]), label=e.get("label", ""))


def _check_resources(res: dict, spec: Path) -> None:
    import submitit

    valid = submitit.SlurmExecutor._valid_parameters()
    unknown = sorted(set(res) - valid)
    if unknown:
        raise SweepError(f"{spec} [slurm]: unknown parameter(s) {', '.join(unknown)}; submitit's "
                         f"SlurmExecutor takes: {', '.join(sorted(valid))}")
    for key in ("time", "cpus_per_task", "gpus_per_node", "ntasks_per_node", "nodes", "array_parallelism"):
        if key in res and (isinstance(res[key], bool) or not isinstance(res[key], int) or res[key] < 0):
            raise SweepError(f"{spec} [slurm]: '{key}' expects a non-negative integer, got {res[key]!r}")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


# ---- the job ---------------------------------------------------------------------------------------

class _PreemptionFlag:
    """Defers submitit's USR2 handler to a step boundary.

    submitit's handler checkpoints and requeues at once, possibly in the middle of an optimizer
    step. This flag records the signal; the trainer polls it after each step, writes a
    checkpoint of that step, and only then is submitit's handler run (→ ``SweepJob.checkpoint``,
    requeue, exit).
    """

    def __init__(self) -> None:
        self.signum, self.frame, self.previous, self.sig = None, None, None, None

    def install(self) -> "_PreemptionFlag":
        import threading

        from submitit.core.job_environment import JobEnvironment

        if threading.current_thread() is not threading.main_thread():
            return self
        self.sig = JobEnvironment._usr_sig()
        prev = signal.getsignal(self.sig)
        if callable(prev):  # submitit's handler: we are inside a submitit job
            self.previous = prev
            signal.signal(self.sig, self._record)
        return self

    def _record(self, signum, frame) -> None:
        self.signum, self.frame = signum, frame

    def is_set(self) -> bool:
        return self.signum is not None

    def forward(self) -> None:
        """Run submitit's handler now (checkpoint → requeue → exit); without one, do nothing."""
        if self.previous is not None:
            signal.signal(self.sig, self.previous)
            self.previous(self.signum, self.frame)

    def uninstall(self) -> None:
        if self.previous is not None:
            signal.signal(self.sig, self.previous)


def _job_environment():
    """submitit's JobEnvironment inside a submitit job, else None."""
    try:
        import submitit

        env = submitit.JobEnvironment()
        _ = env.global_rank
        return env
    except Exception:  # not inside a submitit job (a direct call)
        return None


@dataclasses.dataclass
class SweepJob:
    """What one job runs: train (or resume) one run, then evaluate its missing settings.

    Picklable; submitit calls it in the job process. ``checkpoint`` makes it requeueable.
    """

    sweep: str
    config: dict
    label: str
    evals: list
    store: str
    threads: int = 1
    train: bool = True

    def __call__(self) -> dict:
        import torch

        from .train import Preempted, train

        torch.set_num_threads(max(1, self.threads))
        env = _job_environment()
        world = env.num_tasks if env is not None else 1
        rank = env.global_rank if env is not None else 0
        if world > 1:
            _init_distributed()
        flag = _PreemptionFlag().install()
        cfg = RunConfig.from_mapping(self.config, source="sweep job")
        summary = {"run_id": cfg.run_id(), "rank": rank, "evaluated": [], "skipped": []}
        try:
            if self.train:
                try:
                    result = train(cfg, progress=False, should_stop=flag.is_set)
                    summary["starts"] = result.record.get("starts")
                    summary["weights"] = _digest(result.model)  # equal on every rank of a data-parallel job
                except Preempted:
                    if rank != 0:
                        raise SystemExit(-1)  # the leader requeues the whole job
                    flag.forward()
                    raise
        finally:
            if world > 1:
                import torch.distributed as dist

                dist.destroy_process_group()
        if rank == 0:
            self._evaluate(cfg, flag, summary)
        flag.uninstall()
        return summary

    def _evaluate(self, cfg: RunConfig, flag: _PreemptionFlag, summary: dict) -> None:
        from .evaluate import evaluate_run
        from .store import ResultStore

        store = ResultStore(self.store)
        stored = {r.get("eval_key") for r in store.rows()}  # this run's keys are written only by this job
        step = cfg.steps if self.train else int(_read_json(cfg.run_dir() / "run.json").get("step", cfg.steps))
        for e in self.evals:
            setting = EvalSetting(**e)
            key = setting.key(cfg.run_id(), step)
            if key in stored:
                summary["skipped"].append(key)
                continue
            if flag.is_set():
                flag.forward()
            label = f"{self.label} {setting.label}".strip()
            rows, _ = evaluate_run(cfg.run_dir(), method=label, **setting.kwargs())
            store.append([{**r, "sweep": self.sweep, "eval_key": key, "label": label} for r in rows])
            summary["evaluated"].append(key)

    def checkpoint(self, *args, **kwargs):
        """submitit's requeue hook: resubmit this same job (it resumes from the run's checkpoint)."""
        import submitit

        return submitit.helpers.DelayedSubmission(self)


def _digest(model) -> str:
    h = hashlib.sha256()
    for p in model.state_dict().values():
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _init_distributed() -> None:
    """torch.distributed from submitit's environment: one process per task (GPU), env:// init."""
    import submitit
    import torch
    import torch.distributed as dist

    cuda = torch.cuda.is_available()
    env = submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=cuda)
    if cuda:
        torch.cuda.set_device(0)  # CUDA_VISIBLE_DEVICES now holds this rank's GPU only
    dist.init_process_group(backend="nccl" if cuda else "gloo", rank=env.rank, world_size=env.world_size)


# ---- job states from submitit --------------------------------------------------------------------------

def job_states(records: list[dict]) -> dict[str, dict]:
    """job_id → {state: pending | running | success | error | ended, raw, error, log}.

    Result pickles (written by submitit in the job folder) decide success / error; otherwise
    Slurm jobs are asked through submitit (sacct) and local jobs by their controller's PID.
    """
    import pickle

    from submitit.core.utils import JobPaths

    out, slurm = {}, []
    for rec in records:
        paths = JobPaths(rec["folder"], job_id=rec["job_id"], task_id=0)
        info = {"log": str(paths.stderr)}
        if paths.result_pickle.exists():
            try:
                with open(paths.result_pickle, "rb") as fh:
                    outcome, payload = pickle.load(fh)
            except Exception as err:  # a damaged pickle
                outcome, payload = "error", f"unreadable result {paths.result_pickle}: {err}"
            if outcome == "success":
                info["state"] = "success"
            else:
                lines = [ln for ln in str(payload).strip().splitlines() if ln.strip()]
                info.update(state="error", error=lines[-1] if lines else "job failed")
        elif rec["executor"] == "slurm":
            slurm.append(rec)
            info["state"] = "unknown"
        elif rec["executor"] == "local":
            alive = _pid_alive(int(rec["job_id"]))
            info.update(state="running" if alive else "ended", raw="" if alive else "(process gone)")
        else:  # debug jobs run in-process and leave no result file: judged by the run's records
            info.update(state="success", raw="(in-process debug job)")
        out[rec["job_id"]] = info
    if slurm:
        raw = _sacct_states([r["job_id"] for r in slurm], slurm[0]["folder"])
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


def _sacct_states(job_ids: list[str], folder: str) -> dict[str, str]:
    """Slurm states through submitit's watcher (one forced sacct call for all jobs)."""
    import submitit

    jobs = [submitit.SlurmJob(folder=folder, job_id=j) for j in job_ids]
    try:
        jobs[0].get_info(mode="force")
    except Exception:
        return {}
    return {j.job_id: j.watcher.get_state(j.job_id, mode="cache") for j in jobs}


def _pid_alive(pid: int) -> bool:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"submitit" in cmd


# ---- submitting ------------------------------------------------------------------------------------------

def make_executor(kind: str, sweep: Sweep):
    """The submitit executor named ``kind`` (never AutoExecutor: it picks Slurm whenever srun exists)."""
    import submitit

    res = dict(sweep.resources)
    folder = sweep.folder / "jobs" / "%j"
    if kind not in EXECUTORS:
        raise SweepError(f"unknown executor '{kind}'; known: {', '.join(EXECUTORS)}")
    if res.get("gpus_per_node", 0) > 1 and "ntasks_per_node" not in res:
        res["ntasks_per_node"] = res["gpus_per_node"]  # one process per GPU (torch.distributed)
    if kind == "slurm":
        missing = [c for c in ("srun", "sbatch", "sacct") if shutil.which(c) is None]
        if missing:
            raise SweepError(f"executor 'slurm' needs the Slurm client on PATH ({', '.join(missing)} not found); "
                             f"use --executor local to run here")
        ex = submitit.SlurmExecutor(folder=folder)
        res.setdefault("job_name", f"hdfm-{sweep.name}")
        ex.update_parameters(**res)
    elif kind == "local":
        ex = submitit.LocalExecutor(folder=folder)
        ex.update_parameters(timeout_min=res["time"], tasks_per_node=res.get("ntasks_per_node", 1),
                             gpus_per_node=res.get("gpus_per_node", 0),
                             **({"signal_delay_s": res["signal_delay_s"]} if "signal_delay_s" in res else {}))
    else:
        ex = submitit.DebugExecutor(folder=folder)
    return ex


def plan(sweep: Sweep, retry_failed: bool = False) -> tuple[list[SweepRun], dict[str, list[str]]]:
    """Which runs to submit now, and why the others are not."""
    by_state: dict[str, list[str]] = {s: [] for s in STATES}
    todo = []
    status = {s["run_id"]: s for s in sweep.status()}
    for run in sweep.runs:
        st = status[run.run_id]
        by_state[st["state"]].append(run.label)
        if st["state"] == "done" or st["live"]:  # finished, or a job is queued / running for it
            continue
        if st["state"] == "failed" and not retry_failed:
            continue
        todo.append(run)
    return todo, by_state


def submit(sweep: Sweep, executor: str, retry_failed: bool = False) -> list:
    """Submit the runs that need it as one job array; record the jobs only once sbatch accepted them."""
    todo, _ = plan(sweep, retry_failed)
    if not todo:
        return []
    ex = make_executor(executor, sweep)
    threads = int(sweep.resources.get("cpus_per_task", 1))
    jobs_in = [SweepJob(sweep=sweep.name, config=r.config.to_dict(), label=r.label,
                        evals=[dataclasses.asdict(e) for e in r.evals], store=str(sweep.store),
                        threads=threads, train=not sweep.eval_only) for r in todo]
    if executor == "debug":
        jobs = [ex.submit(j) for j in jobs_in]
    else:
        try:
            with _quiet_submitit(), ex.batch():
                jobs = [ex.submit(j) for j in jobs_in]
        except Exception as err:  # sbatch refused (bad partition, resources ...): nothing recorded
            lines = [ln.split("error:", 1)[-1].strip() for ln in str(err).splitlines() if "error:" in ln]
            raise SweepError(f"submission refused: {'; '.join(dict.fromkeys(lines)) or str(err).strip()}"
                             [:500]) from None
    from .io import append_line

    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    for run, job in zip(todo, jobs):
        append_line(sweep.jobs_file, json.dumps({"run_id": run.run_id, "label": run.label, "job_id": str(job.job_id),
                                                 "executor": executor, "folder": str(sweep.folder / "jobs" / "%j"),
                                                 "submitted": now}))
    return jobs


class _quiet_submitit:
    """Keep sbatch's refusal (which submitit prints to sys.stderr, then raises) out of the terminal:
    it is reported once, as our one-line error."""

    def __enter__(self):
        import contextlib
        import io

        from submitit.core.logger import get_logger

        get_logger()  # create submitit's log handler now, bound to the real stderr, not to our buffer
        self.redirect = contextlib.redirect_stderr(io.StringIO())
        self.redirect.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.redirect.__exit__(*exc)


def wait(jobs: list, timeout_s: float, progress: bool = True) -> None:
    """Poll until every job is done or the deadline passes (submitit's own wait has no timeout)."""
    from tqdm.auto import tqdm

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


def run_debug(jobs: list) -> None:
    """Debug executor: run each job in this process (an error in one does not stop the others)."""
    for job in jobs:
        try:
            job.result()
        except Exception as err:  # recorded in the job's result; status reports it
            print(f"sweep: job {job.job_id} failed: {str(err).strip().splitlines()[-1]}")


def sweep_frame(sweep: Sweep):
    """The sweep's rows from its store, labelled by the current spec (for ``hdfm-bench table``)."""
    from .store import ResultStore

    df = ResultStore(sweep.store).read()
    labels = {}
    for run in sweep.runs:
        for e, key in zip(run.evals, run.eval_keys(sweep.eval_only)):
            labels[key] = f"{run.label} {e.label}".strip()
    if df.empty or "eval_key" not in df:
        return df.iloc[0:0]
    df = df[df["eval_key"].isin(labels)].copy()
    df["method"] = df["eval_key"].map(labels)
    order = {lab: i for i, lab in enumerate(dict.fromkeys(labels.values()))}  # the spec's order
    return df.sort_values("method", key=lambda col: col.map(order), kind="stable")


def _data_present(cfg: RunConfig) -> bool:
    from tasks import TaskError, get_task

    try:
        get_task(cfg.task, **cfg.task_params)
        return True
    except TaskError:
        return False


def dry_run(sweep: Sweep, executor: str) -> str:
    """Every resolved run, its evaluations, and the job array with its resources (sbatch script)."""
    from tabulate import tabulate

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
                 f" extractor={e.extractor or 'task default'} reference={e.reference_split or 'task default'}"
                 for e in evals]
    absent = sorted({f"{r.config.task} {r.config.task_params}" for r in sweep.runs
                     if not _data_present(r.config)})
    if absent:
        text.append(f"\ndata not on this machine (names and shapes checked, files not): {'; '.join(absent)}")
    res = dict(sweep.resources)
    text.append(f"\njob array: {len(sweep.runs)} task(s) via executor '{executor}'; resources: "
                + ", ".join(f"{k}={v}" for k, v in res.items()))
    if executor == "slurm":
        from submitit.slurm.slurm import _make_sbatch_string

        params = {k: v for k, v in res.items()}
        if params.get("gpus_per_node", 0) > 1:
            params.setdefault("ntasks_per_node", params["gpus_per_node"])
        params.setdefault("job_name", f"hdfm-{sweep.name}")
        script = _make_sbatch_string(command="python -u -m submitit.core._submit <folder>",
                                     folder=str(sweep.folder / "jobs" / "%j"), map_count=len(sweep.runs), **params)
        text += ["sbatch script header:"] + [ln for ln in script.splitlines() if ln.startswith("#SBATCH")]
    return "\n".join(text)


__all__ = ["Sweep", "SweepRun", "SweepJob", "EvalSetting", "SweepError", "submit", "wait", "plan",
           "make_executor", "job_states", "sweep_frame", "dry_run", "run_debug", "EXECUTORS", "STATES"]
