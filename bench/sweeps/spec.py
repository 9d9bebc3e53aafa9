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
    protocol = "native"           # optional, anywhere: shared | native | native-cond (training.protocols)
    [eval]                        # evaluation axes (lists → product) and scalars
    sampler = ["default"]         # "default" = the path's own sampler
    steps = [10, 20]              # "default" = the sampler's own
    cfg_scale = [1.0, 3.0]
    ema = [0.999]                 # "none" = the raw weights
    seed = [0]
    checkpoint_step = ["latest"]  # or steps whose checkpoint copy the runs keep (keep_every)
    n = 500
    [slurm]                       # submitit SlurmExecutor parameters, under submitit's names
    time = 60
    cpus_per_task = 2

Every run is a :class:`~hdfm_bench.core.config.RunConfig`; its hash is its run id, so a sweep run again
finds its runs: finished ones are skipped, unfinished ones resume from their last checkpoint, failed
ones are resubmitted only with ``retry_failed``. One job per run (an array on Slurm) trains, then
evaluates each evaluation setting not yet in the store and appends its rows in one atomic write.
Jobs are checkpointable in submitit's sense: on the preemption / time-limit signal (USR2) the
trainer finishes its step, writes a checkpoint and submitit requeues the job, which resumes.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from hdfm_bench.backbones import build_backbone
from hdfm_bench.core import plugins
from hdfm_bench.core.config import RunConfig, RunConfigError
from hdfm_bench.core.overrides import OverrideError, apply_override, non_finite, set_dotted, split_assignment
from hdfm_bench.core.rundir import CHECKPOINT_FILE, read_record
from hdfm_bench.evaluation.metrics.extractors import get_extractor_info
from hdfm_bench.evaluation.metrics.reference import load_statistics
from hdfm_bench.evaluation.protocol import FEATURE_METRICS, EvalSettings
from hdfm_bench.methods import ConfigError, Objective, get_path, get_sampler, recipe
from hdfm_bench.specs import resolve as resolve_spec
from hdfm_bench.tasks import get_task
from hdfm_bench.training import protocols, with_plugin_origins
from hdfm_bench.training.distributed import check_divisible

from .submitit_adapter import INTEGER_RESOURCES, processes, valid_slurm_parameters

SPEC_KEYS = {"name": "sweep name (default: the file name)", "description": "free text",
             "out_dir": "folder of run directories (default: runs)",
             "folder": "sweep folder: job logs, job records (default: sweeps/<name>)",
             "store": "results store (default: <folder>/results.jsonl)",
             "eval_only": "evaluate existing checkpoints, train nothing",
             "base": "RunConfig fields of every run", "grid": "axes: lists of alternatives",
             "include": "explicit extra runs", "eval": "evaluation axes and settings",
             "slurm": "submitit SlurmExecutor parameters",
             "eval_slurm": "[slurm] parameters changed for the shard jobs of sharded evaluations (default: one GPU, "
                           "one task)",
             "targets": "published numbers (documentation)",
             "plugins": "modules or .py files (relative to the spec) registering paths, samplers, backbones, tasks, "
                        "extractors or metrics; loaded here and in every job"}
EVAL_AXES = ("sampler", "steps", "cfg_scale", "ema", "seed", "checkpoint_step")
EVAL_DEFAULTS = {"sampler": ["default"], "steps": ["default"], "cfg_scale": [1.0], "ema": ["none"], "seed": [0],
                 "checkpoint_step": ["latest"],
                 "n": 500, "cfg_interval": [0.1, 1.0], "extractor": "", "reference_split": "",
                 "kid_subset_size": 0, "sampler_params": {}, "shards": 1, "batch_size": 0, "reference": "",
                 "metrics": list(FEATURE_METRICS)}
DEFAULT_RESOURCES = {"time": 60, "cpus_per_task": 1}
JOBS_FILE = "jobs.jsonl"


class SweepError(ValueError):
    """A bad spec, value or executor; one line naming the problem."""


# ---- the spec ----------------------------------------------------------------------------------------

@dataclasses.dataclass
class SweepRun:
    config: RunConfig
    label: str
    evals: list[EvalSettings]

    @property
    def run_id(self) -> str:
        return self.config.run_id()

    def final_step(self, eval_only: bool) -> int:
        """The checkpoint step the evaluations are made at (recorded step for eval-only sweeps)."""
        if not eval_only:
            return self.config.steps
        r = read_record(self.config.run_dir())
        if not r:
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
    eval_resources: dict = dataclasses.field(default_factory=dict)

    @property
    def jobs_file(self) -> Path:
        return self.folder / JOBS_FILE

    @property
    def job_name(self) -> str:
        return f"hdfm-{self.name}"

    @property
    def shards_dir(self) -> Path:
        """Where sharded evaluations keep their shard files (``<folder>/shards/<eval key>/``)."""
        return self.folder / "shards"

    @classmethod
    def load(cls, spec: str | Path, overrides: Iterable[str] = (), resources: Iterable[str] = (),
             eval_only: bool | None = None, check: bool = True, data: dict | None = None,
             check_data: bool = True, eval_overrides: Iterable[str] = ()) -> Sweep:
        """Parse, expand and validate a spec. ``overrides``: ``key=value`` on [base];
        ``resources``: ``key=value`` on [slurm]; ``eval_overrides``: ``key=value`` on [eval];
        ``data``: the parsed spec, when a caller edited
        it (``spec`` then only names it in messages). Raises :class:`SweepError` naming the problem."""
        spec = resolve_spec(spec)
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
        extra = _plugins(data.get("plugins", []), spec)
        base = _overridden(data.get("base", {}), overrides, "--set")
        mappings = _expand(base, data.get("grid", {}), data.get("include", []), spec)
        global_eval = _overridden(data.get("eval", {}), eval_overrides, "--eval")
        evals = _eval_settings(global_eval, spec)
        res = {**DEFAULT_RESOURCES, **data.get("slurm", {})}
        try:
            for item in resources:
                key, value = split_assignment(item, "--slurm")
                res[key] = value
        except OverrideError as err:
            raise SweepError(str(err)) from None
        _check_resources(res, spec)
        eval_res = {k: v for k, v in res.items() if k not in ("ntasks_per_node", "nodes")}
        if res.get("gpus_per_node", 0) > 1:
            eval_res["gpus_per_node"] = 1  # a shard job is one process on one GPU of one node
        eval_res.update(data.get("eval_slurm", {}))
        _check_resources(eval_res, spec)
        eval_only = bool(data.get("eval_only", False)) if eval_only is None else eval_only
        runs, seen = [], {}
        labels = _labels(mappings)
        for mapping, label in zip(mappings, labels):
            # an [[include]] may carry its own `eval` table, merged over [eval] (e.g. a level
            # sampler whose step budget is fixed by the path: steps = ["default"])
            own_eval = mapping.pop(_RUN_EVAL, None)
            run_evals = evals if own_eval is None else _eval_settings({**global_eval, **own_eval}, spec)
            try:
                if extra:
                    mapping = {**mapping, "plugins": [*extra, *mapping.get("plugins", [])]}
                cfg = RunConfig.from_mapping({**_with_protocol(mapping, spec), "out_dir": out_dir}, source=str(spec))
                cfg = with_plugin_origins(cfg)  # a path from an installed plugin: recorded, in the run id
            except RunConfigError as err:
                raise SweepError(str(err)) from None
            if cfg.run_id() in seen:
                raise SweepError(f"{spec}: runs {seen[cfg.run_id()]!r} and {label!r} resolve to the same config")
            seen[cfg.run_id()] = label
            runs.append(SweepRun(cfg, label, [_resolve_eval(e, cfg, spec) for e in run_evals]))
        sweep = cls(name, spec, folder, store, runs, res, eval_only, eval_res)
        if check:
            sweep.validate(check_data)
        return sweep

    # ---- validation before anything is submitted ----
    def validate(self, check_data: bool = True) -> None:
        """Every name, parameter and combination, without building a model or reading data.

        ``check_data=False`` (dry runs): the tasks' data folders need not exist on this machine."""
        checked: dict[str, str] = {}  # reference file -> its extractor
        for run in self.runs:
            cfg, where = run.config, f"{self.spec_path}: run {run.label!r}"
            try:
                world = processes(self.resources)
                if world > 1 and not self.eval_only:
                    check_divisible(cfg.batch_size, world)
                    if cfg.backend != "torch":
                        raise SweepError(f"backend {cfg.backend}: data-parallel ({world} processes) training is "
                                         "torch-only")
                task = get_task(cfg.task, check_data=check_data, **cfg.task_params)
                path = get_path(cfg.path, **cfg.path_params)
                target = Objective(path, cfg.target or None, cfg.loss or None, cfg.norm or None).target
                with torch.device("meta"):  # names and parameters checked, no memory used
                    build_backbone(cfg.backbone, shape=tuple(task.shape),
                                   num_classes=task.num_classes if cfg.conditional else 0, **cfg.backbone_params)
                for e in run.evals:
                    if e.extractor is not None:
                        get_extractor_info(e.extractor)  # an unknown extractor fails here, not after training
                    if e.reference is not None and check_data:
                        _check_reference(e.reference, e.extractor or task.protocol.get("extractor"), checked)
                    smp = get_sampler(e.sampler, **{**e.sampler_params, **({"steps": e.steps} if e.steps else {})})
                    smp.check(path, target)
                    if e.cfg_scale != 1.0 and not (cfg.conditional and task.num_classes):
                        raise SweepError(f"cfg_scale {e.cfg_scale} needs a class-conditional run")
                    if e.ema is not None and e.ema not in cfg.ema_decays:
                        raise SweepError(f"ema {e.ema} is not kept by the run (ema_decays {list(cfg.ema_decays)})")
            except (ConfigError, ValueError, TypeError, KeyError) as err:
                raise SweepError(f"{where}: {str(err).splitlines()[0]}") from None
            except SweepError as err:
                raise SweepError(f"{where}: {err}") from None
        if self.eval_only:
            missing = [r.label for r in self.runs if not (r.config.run_dir() / CHECKPOINT_FILE).exists()]
            if missing:
                raise SweepError(f"{self.spec_path}: eval-only sweep, but no checkpoint for run(s) "
                                 f"{', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}")


# ---- expansion helpers -------------------------------------------------------------------------------

def _overridden(table: dict, items: Iterable[str], what: str) -> dict:
    """A copy of a spec table with ``key=value`` overrides applied."""
    table = dict(table)
    try:
        for item in items:
            apply_override(table, item, what)
    except OverrideError as err:
        raise SweepError(str(err)) from None
    return table


def _set(d: dict, key: str, value: Any) -> None:
    try:
        set_dotted(d, key, value, "sweep spec")
    except OverrideError as err:
        raise SweepError(str(err)) from None


def _product(base: dict, axes: dict, where: str) -> list[dict]:
    for k, v in axes.items():
        if not isinstance(v, list) or not v:
            raise SweepError(f"{where}: axis '{k}' must be a non-empty list of alternatives, got {v!r}")
    keys = list(axes)
    out = []
    for combo in itertools.product(*(axes[k] for k in keys)):
        d = json.loads(json.dumps(base))
        for k, v in zip(keys, combo):
            _set(d, k, v)
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
            _set(merged, k, v)
        expanded = _product(merged, axes, f"{spec} [[include]] #{i + 1}")
        if own_eval is not None:
            for m in expanded:
                m[_RUN_EVAL] = own_eval
        runs += expanded
    return runs


def _plugins(specs: Any, spec: Path) -> list[str]:
    """The spec's ``plugins``: module names as they are, .py files relative to the spec's folder; loaded now
    (a plugin's path must exist before the runs are expanded)."""
    if not isinstance(specs, list) or not all(isinstance(s, str) for s in specs):
        raise SweepError(f"{spec}: plugins must be a list of module names or .py files, got {specs!r}")
    out = [str((spec.parent / s).resolve()) if plugins.is_file(s) else s for s in specs]
    try:
        plugins.load_all(out)
    except plugins.PluginError as err:
        raise SweepError(f"{spec}: {err}") from None
    return out


def _with_protocol(mapping: dict, spec: Path) -> dict:
    """A run's ``protocol = "shared" | "native" | "native-cond"`` (training.protocols): the protocol's
    settings for the run's path, over the run's own (base, grid or include)."""
    if "protocol" not in mapping:
        return mapping
    out = dict(mapping)
    name = out.pop("protocol")
    try:
        return {**out, **protocols.overrides(out.get("path", RunConfig.path), name, out.get("path_params"))}
    except ValueError as err:
        raise SweepError(f"{spec}: {err}") from None


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


def _resolve_eval(e: dict, cfg: RunConfig, spec: Path) -> EvalSettings:
    def number(key, kind, allow_default=None):
        v = e[key]
        if allow_default is not None and v == allow_default:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (kind is int and not isinstance(v, int)):
            raise SweepError(f"{spec} [eval]: '{key}' expects {kind.__name__}"
                             f"{' or ' + repr(allow_default) if allow_default else ''}, got {v!r}")
        return kind(v)

    bad = non_finite(e)
    if bad:
        raise SweepError(f"{spec} [eval]: '{bad}' must be a finite number")
    sampler, steps = e["sampler"], number("steps", int, "default")
    if not isinstance(sampler, str):
        raise SweepError(f"{spec} [eval]: 'sampler' expects a name or 'default', got {sampler!r}")
    if sampler == "default":  # the method's recipe: its sampler, at its budget unless steps are given
        r = recipe(cfg.path, **cfg.path_params)
        sampler, steps = r.sampler, steps if steps is not None else r.steps
    interval = e["cfg_interval"]
    if not (isinstance(interval, list) and len(interval) == 2):
        raise SweepError(f"{spec} [eval]: 'cfg_interval' expects [low, high], got {interval!r}")
    if not isinstance(e["sampler_params"], dict):
        raise SweepError(f"{spec} [eval]: 'sampler_params' expects a table, got {e['sampler_params']!r}")
    n = number("n", int)
    if n < 2:
        raise SweepError(f"{spec} [eval]: 'n' must be >= 2, got {n}")
    metrics = e["metrics"]
    if isinstance(metrics, str):
        metrics = [metrics]
    if not isinstance(metrics, list):
        raise SweepError(f"{spec} [eval]: 'metrics' expects a list such as [\"fid\"], got {metrics!r}")
    step = number("checkpoint_step", int, "latest")
    if step is not None and step != cfg.steps and (not cfg.keep_every or step % cfg.keep_every or step > cfg.steps):
        raise SweepError(f"{spec} [eval]: checkpoint_step {step} is not kept by run {cfg.run_id()} (steps "
                         f"{cfg.steps}, keep_every {cfg.keep_every}: set keep_every to a divisor of {step})")
    try:
        return EvalSettings(sampler=sampler, steps=steps, cfg_scale=number("cfg_scale", float),
                            ema=number("ema", float, "none"), seed=number("seed", int), n=n,
                            cfg_interval=tuple(float(v) for v in interval), extractor=e["extractor"] or None,
                            reference_split=e["reference_split"] or None,
                            kid_subset_size=number("kid_subset_size", int) or None,
                            sampler_params=dict(e["sampler_params"]), label=e.get("label", ""),
                            shards=number("shards", int), batch_size=number("batch_size", int) or None,
                            reference=e["reference"] or None, metrics=tuple(metrics),
                            checkpoint_step=step)
    except ConfigError as err:
        raise SweepError(f"{spec} [eval]: {err}") from None


def _check_reference(path: str, extractor: str | None, checked: dict[str, str]) -> None:
    """A reference statistics file must be readable and made with the evaluation's extractor."""
    if path not in checked:
        if not Path(path).is_file():
            raise SweepError(f"reference statistics file {path} not found")
        checked[path] = load_statistics(path)["meta"].get("extractor", "")
    if extractor and checked[path] and checked[path] != extractor:
        raise SweepError(f"reference statistics {path} were computed with '{checked[path]}', the evaluation "
                         f"uses '{extractor}'")


def _check_resources(res: dict, spec: Path) -> None:
    valid = valid_slurm_parameters()
    unknown = sorted(set(res) - valid)
    if unknown:
        raise SweepError(f"{spec} [slurm]: unknown parameter(s) {', '.join(unknown)}; submitit's "
                         f"SlurmExecutor takes: {', '.join(sorted(valid))}")
    for key in INTEGER_RESOURCES:
        if key in res and (isinstance(res[key], bool) or not isinstance(res[key], int) or res[key] < 0):
            raise SweepError(f"{spec} [slurm]: '{key}' expects a non-negative integer, got {res[key]!r}")


__all__ = ["Sweep", "SweepRun", "SweepError", "SPEC_KEYS", "EVAL_AXES", "EVAL_DEFAULTS", "JOBS_FILE"]
