"""The one builder from a RunConfig to (task, path, objective, model), and loading a trained run."""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shutil
from pathlib import Path

import torch

from hdfm_bench.backbones import BACKBONES, build_backbone
from hdfm_bench.core import plugins
from hdfm_bench.core.config import RunConfig
from hdfm_bench.core.hashing import RUN_ID_DIGITS
from hdfm_bench.core.rundir import checkpoint_path, kept_checkpoint_path, kept_steps, read_record
from hdfm_bench.methods import PATHS, Objective, get_path
from hdfm_bench.tasks import TASKS, Task, get_task

from . import checkpoint as ckpt


def resolve_device(name: str) -> torch.device:
    """``auto`` → cuda when available, else cpu; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but no GPU is available")
    return torch.device(name)


def c_compiler() -> str | None:
    """The C compiler torch.compile's inductor backend would use on a CPU ($CC, else cc / gcc / clang)."""
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def compile_module(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``torch.compile(model)`` (inductor): the same function, fused kernels. On a CPU it needs a C
    compiler; without one this is a one-line error, not an inductor traceback at the first call."""
    if device.type == "cpu" and c_compiler() is None:
        raise ValueError("compile needs a C compiler for torch.compile on a CPU ($CC, cc, gcc or clang on PATH); "
                         "install one or turn compile off")
    if device.type == "cpu":  # inductor asks for CUDA_HOME; with an nvcc on PATH torch warns on every CPU run
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    return torch.compile(model)


def num_classes(cfg: RunConfig, task: Task) -> int:
    """Classes the backbone is conditioned on: the task's when the run is conditional, else 0."""
    return task.num_classes if cfg.conditional else 0


def build_model(cfg: RunConfig, task: Task) -> torch.nn.Module:
    """A fresh backbone for ``cfg`` (initialised from the global torch RNG seeded with ``cfg.seed``)."""
    torch.manual_seed(cfg.seed)
    return build_backbone(cfg.backbone, shape=tuple(task.shape), num_classes=num_classes(cfg, task),
                          **cfg.backbone_params)


def with_plugin_origins(cfg: RunConfig) -> RunConfig:
    """``cfg`` with the modules that registered its path, backbone and task among its plugins when they are
    not the package's own (an installed plugin found through its entry point): the run then records the
    plugin (module, version, source hash) and its id follows the plugin's code (core.plugins)."""
    plugins.load_entry_points()
    named = ((PATHS, cfg.path), (BACKBONES, cfg.backbone), (TASKS, cfg.task))
    origins = [reg.origin(name) for reg, name in named if name in reg]  # an unknown name is validation's to refuse
    foreign = [o for o in origins if not o.startswith(("hdfm_bench.", plugins.FILE_MODULE_PREFIX)) and o != "builtins"]
    missing = [o for o in dict.fromkeys(foreign) if o not in cfg.plugins]
    return dataclasses.replace(cfg, plugins=(*cfg.plugins, *missing)) if missing else cfg


def build(cfg: RunConfig, *, check_data: bool = True):
    """Task, path, objective and a fresh model for ``cfg`` (every name validated first)."""
    task = get_task(cfg.task, check_data=check_data, **cfg.task_params)
    path = get_path(cfg.path, **cfg.path_params)
    objective = Objective(path, cfg.target or None, cfg.loss or None, cfg.norm or None)
    return task, path, objective, build_model(cfg, task)


def check_owner(path: Path, run_id: str, config_run_id: str) -> None:
    """A checkpoint read for sampling or evaluation must belong to its folder's run, as ``train`` demands:
    the run id it records, the id of the config it carries, the folder's run.json and — for a folder
    named like a run id — the folder's name must all agree (CheckpointError naming both otherwise)."""
    folder = path.parent
    if run_id != config_run_id:
        raise ckpt.CheckpointError(f"{path} records run {run_id} but carries the config of run {config_run_id}")
    owner = read_record(folder).get("run_id")
    if owner and owner != run_id:
        raise ckpt.CheckpointError(f"{path} belongs to run {run_id}, not to this folder's run {owner}")
    if not owner and folder.name != run_id and re.fullmatch(rf"[^-]+-[^-]+-[^-]+-[0-9a-f]{{{RUN_ID_DIGITS}}}",
                                                            folder.name):
        raise ckpt.CheckpointError(f"{path} belongs to run {run_id}, not to the run its folder is named after")


def load_run(run_dir: str | Path, ema: float | None = None,
             step: int | None = None) -> tuple[RunConfig, torch.nn.Module, dict]:
    """The config, the model (raw weights or the EMA of decay ``ema``) and the checkpoint of a run:
    the latest, or with ``step`` the one of that step (the latest or a kept copy, ``keep_every``)."""
    run_dir = Path(run_dir)
    path = checkpoint_path(run_dir)
    if step is not None and kept_checkpoint_path(run_dir, step).is_file():
        path = kept_checkpoint_path(run_dir, step)
    state = ckpt.load(path)
    if step is not None and int(state["step"]) != step:
        kept = ", ".join(map(str, kept_steps(run_dir))) or "none"
        raise ckpt.CheckpointError(f"run {run_dir} has no checkpoint of step {step} (latest: step {state['step']}; "
                                   f"kept: {kept}; train with keep_every to keep copies)")
    cfg = RunConfig.from_mapping(json.loads(state["config"]), source=str(run_dir))
    check_owner(path, state["run_id"], cfg.run_id())
    task = get_task(cfg.task, **cfg.task_params)
    model = build_backbone(cfg.backbone, shape=tuple(task.shape), num_classes=num_classes(cfg, task),
                           **cfg.backbone_params)
    if ema is None:
        weights = state["model"]
    else:
        key = repr(float(ema))
        if key not in state["ema"]:
            raise ckpt.CheckpointError(f"run {run_dir} has no EMA with decay {ema}; has {', '.join(state['ema'])}")
        weights = state["ema"][key]
    ckpt.check_finite(weights, path)
    model.load_state_dict(weights)
    return cfg, model.eval(), state


__all__ = ["resolve_device", "c_compiler", "compile_module", "num_classes", "build_model", "build", "load_run",
           "with_plugin_origins",
           "check_owner"]
