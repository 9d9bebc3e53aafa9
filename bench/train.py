"""The trainer: one RunConfig → a trained model, checkpoints that resume exactly, a run record.

Every compared run goes through this loop with the same backbone, budget and data pipeline:
AdamW with linear warm-up and grad clipping, EMA copies with several decays, class-conditional
training with label dropout (null class = num_classes, methods.md §2.8), bf16 autocast on GPU.

Randomness: model init and dropout use the global torch RNG (seeded); noise, times and label
dropout draw from one dedicated generator; the data order of epoch e is a permutation drawn from a
generator seeded by (seed, e), so step s alone fixes which images it sees. All RNG states and the
step go into each checkpoint, so a resumed run ends with the same weights as an uninterrupted one.
"""
from __future__ import annotations

import contextlib
import copy
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm

from methods import Objective, get_path, validation

from . import checkpoint as ckpt
from .config import RunConfig
from .io import write_text

CHECKPOINT = "checkpoint.pt"
RECORD = "run.json"


class TrainingFailed(RuntimeError):
    """The loss became non-finite; the run is recorded as failed."""


class Interrupted(RuntimeError):
    """Raised by ``stop_at`` to simulate a kill/preemption (tests)."""


class Preempted(RuntimeError):
    """``should_stop`` asked to stop: a checkpoint of the last finished step was written first."""

    def __init__(self, step: int):
        super().__init__(f"stopped after step {step}; checkpoint written")
        self.step = step


def _dist() -> tuple[int, int]:
    """(rank, world size) of the torch.distributed group, (0, 1) without one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def average_gradients(params: list[torch.nn.Parameter], world: int) -> None:
    """Data parallelism: replace each gradient by its mean over ranks (one flattened all-reduce).

    With equal shards, the mean of the ranks' shard-mean gradients is the gradient of the
    global-batch mean loss, so W processes take the step one process would take on the whole batch.
    """
    import torch.distributed as dist

    grads = [p.grad for p in params if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


@dataclass
class TrainResult:
    run_dir: Path
    model: torch.nn.Module
    emas: dict[float, torch.nn.Module]
    record: dict


class EMA:
    """Exponential moving average of parameters: p̄ ← d p̄ + (1 − d) p.

    With ``warmup`` the decay used at update n is min(d, (1 + n)/(10 + n)) (k-diffusion style), so
    short runs get a useful average early; buffers are copied.
    """

    def __init__(self, model: torch.nn.Module, decay: float, warmup: bool = True):
        self.decay, self.warmup, self.updates = decay, warmup, 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    def current_decay(self) -> float:
        if not self.warmup:
            return self.decay
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        d = self.current_decay()
        for p_ema, p in zip(self.model.parameters(), model.parameters()):
            p_ema.lerp_(p.detach(), 1.0 - d)
        for b_ema, b in zip(self.model.buffers(), model.buffers()):
            b_ema.copy_(b)
        self.updates += 1


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but no GPU is available")
    return torch.device(name)


def build(cfg: RunConfig):
    """Task data, path, objective and a fresh model for ``cfg`` (validates every name first)."""
    from tasks import get_task

    from .backbones import build_backbone

    task = get_task(cfg.task, **cfg.task_params)
    path = get_path(cfg.path, **cfg.path_params)
    objective = Objective(path, cfg.target or None, cfg.loss or None, cfg.norm or None)
    num_classes = task.num_classes if cfg.conditional else 0
    torch.manual_seed(cfg.seed)
    model = build_backbone(cfg.backbone, shape=tuple(task.shape), num_classes=num_classes, **cfg.backbone_params)
    return task, path, objective, model


def _lr_at(cfg: RunConfig, step: int) -> float:
    return cfg.lr * min(1.0, (step + 1) / cfg.warmup) if cfg.warmup else cfg.lr


def _batch_indices(cfg: RunConfig, n: int, step: int) -> torch.Tensor:
    per_epoch = max(n // cfg.batch_size, 1)
    epoch, i = divmod(step, per_epoch)
    g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
    perm = torch.randperm(n, generator=g)
    if n < cfg.batch_size:  # tiny data: sample with wrap-around
        return perm[torch.arange(cfg.batch_size) % n]
    return perm[i * cfg.batch_size:(i + 1) * cfg.batch_size]


def _record(run_dir: Path, cfg: RunConfig, **fields) -> dict:
    rec_path = run_dir / RECORD
    rec = json.loads(rec_path.read_text()) if rec_path.exists() else {}
    rec.update({"run_id": cfg.run_id(), "config": cfg.to_dict(), **fields})
    write_text(rec_path, json.dumps(rec, indent=2, default=str))
    return rec


def _load_own_checkpoint(ck: Path, cfg: RunConfig) -> dict:
    """The run's checkpoint, refused (CheckpointError) when it belongs to another run."""
    state = ckpt.load(ck)
    if state["run_id"] != cfg.run_id():
        raise ckpt.CheckpointError(f"{ck} belongs to run {state['run_id']}, not {cfg.run_id()}")
    return state


def _record_start(run_dir: Path, cfg: RunConfig, start: int, budget: dict, objective) -> None:
    """run.json at the start of an invocation: status, budget, objective, and where it resumed from."""
    prev = json.loads((run_dir / RECORD).read_text()) if (run_dir / RECORD).exists() else {}
    starts = list(prev.get("starts", []))
    if start < cfg.steps:
        starts.append(start)  # one entry per invocation that trained: where it resumed from
    _record(run_dir, cfg, status="running" if start < cfg.steps else prev.get("status", "running"),
            budget={**prev.get("budget", {}), **budget}, objective=objective.describe(), starts=starts)


def _record_done(run_dir: Path, cfg: RunConfig, budget: dict, wall: float, history: list) -> dict:
    return _record(run_dir, cfg, status="done", budget={**budget, "wall_time_s": round(wall, 2)},
                   final_loss=history[-1][1] if history else None,
                   loss_first_last=[history[0][1], history[-1][1]] if history else None, history=history)


def train(cfg: RunConfig, *, progress: bool = True, stop_at: int | None = None,
          on_step: Callable[[int, float], None] | None = None,
          should_stop: Callable[[], bool] | None = None) -> TrainResult:
    """Train (or resume) the run of ``cfg``; returns the model, its EMAs and the run record.

    Re-running an identical config resumes from its last checkpoint; a finished run returns at
    once. ``stop_at`` raises :class:`Interrupted` before that step (a simulated kill).
    ``should_stop`` is polled after every step (preemption): when true, the trainer writes a
    checkpoint of that step and raises :class:`Preempted`.

    Inside a torch.distributed group of W processes (data parallel, e.g. one per GPU of a Slurm
    job), rank r trains on rows [r B/W, (r+1) B/W) of each global batch of the single-process
    run, gradients are averaged over ranks, and only rank 0 writes checkpoints and records.
    Noise and times come from a per-rank generator (rank 0's is the single-process one).
    """
    if cfg.backend == "jax":
        from .jax.trainer import train_jax

        return train_jax(cfg, progress=progress, stop_at=stop_at, on_step=on_step, should_stop=should_stop)
    task, path, objective, model = build(cfg)
    rank, world = _dist()
    if cfg.batch_size % world:
        raise ValueError(f"batch_size {cfg.batch_size} is not divisible by the {world} data-parallel processes")
    shard = slice(rank * cfg.batch_size // world, (rank + 1) * cfg.batch_size // world)
    device = resolve_device(cfg.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", torch.cuda.current_device())
    run_dir = cfg.run_dir()
    run_dir.mkdir(parents=True, exist_ok=True)
    x_train, y_train = task.load("train")
    model.to(device)
    emas = {d: EMA(model, d) for d in cfg.ema_decays}
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2),
                            weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed + 1 + 1_000_003 * rank)
    start, history, wall = 0, [], 0.0
    n_params = sum(p.numel() for p in model.parameters())

    ck = run_dir / CHECKPOINT
    if ck.exists():
        state = _load_own_checkpoint(ck, cfg)
        model.load_state_dict(state["model"])
        for d, ema in emas.items():
            ema.model.load_state_dict(state["ema"][repr(d)])
            ema.updates = int(state["ema_updates"])
        opt.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"]["torch"])
        gen.set_state(state["rng"]["generator"])
        if device.type == "cuda" and "cuda" in state["rng"]:
            torch.cuda.set_rng_state(state["rng"]["cuda"])
        start, history, wall = int(state["step"]), list(state["history"]), float(state["wall_time"])
        if world > 1 and "generators" in state["rng"]:
            gen.set_state(state["rng"]["generators"][rank])

    budget = {"images_seen": cfg.steps * cfg.batch_size, "steps": cfg.steps, "batch_size": cfg.batch_size,
              "parameters": n_params, "backbone": model.config, "task": task.describe(),
              "processes": world}
    leader = rank == 0
    if leader:
        _record_start(run_dir, cfg, start, budget, objective)

    def save_checkpoint(step: int) -> None:
        gens = None
        if world > 1:  # every rank's noise stream, so a resumed data-parallel run continues exactly
            import torch.distributed as dist

            gens = [None] * world
            dist.all_gather_object(gens, gen.get_state())
        if not leader:
            return
        rng = {"torch": torch.get_rng_state(), "generator": gen.get_state()}
        if gens is not None:
            rng["generators"] = gens
        if device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state()
        ckpt.save(ck, {"format": "hdfm-bench/1", "run_id": cfg.run_id(), "step": step,
                       "model": model.state_dict(),
                       "ema": {repr(d): e.model.state_dict() for d, e in emas.items()},
                       "ema_updates": next(iter(emas.values())).updates,
                       "optimizer": opt.state_dict(), "rng": rng, "history": history,
                       "wall_time": wall, "config": json.dumps(cfg.to_dict())})
        _record(run_dir, cfg, step=step)  # after the checkpoint exists: status reads progress here

    null = task.num_classes if cfg.conditional else None
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" and cfg.bf16
                else contextlib.nullcontext())
    bar = tqdm(total=cfg.steps, initial=start, disable=not progress, desc=cfg.run_id(), unit="step",
               dynamic_ncols=True, leave=False)
    last_finite = history[-1][1] if history else float("nan")
    model.train()
    try:
        for step in range(start, cfg.steps):
            if stop_at is not None and step == stop_at:
                raise Interrupted(f"stopped before step {step}")
            t0 = time.perf_counter()
            idx = _batch_indices(cfg, len(x_train), step)[shard]
            x = task.augment(x_train[idx], generator=gen).to(device)  # e.g. imagefolder's hflip
            eps = torch.randn(x.shape, generator=gen).to(device)
            t = path.sample_t(torch.rand(x.shape[0], generator=gen, dtype=x.dtype)).to(device)
            drop = torch.rand(x.shape[0], generator=gen) < cfg.label_dropout
            y = torch.where(drop, null, y_train[idx]).to(device) if null is not None else None
            with validation(step == start):  # check inputs once; the loss check catches the rest
                z = path.corrupt(x, eps, t)
                with autocast:
                    raw = model(z, t, y)
                loss = objective.loss(raw.float(), x, eps, t, z).mean()
            aux = getattr(model, "last_aux_loss", None)
            total = loss + aux if aux is not None else loss
            for group in opt.param_groups:
                group["lr"] = _lr_at(cfg, step)
            opt.zero_grad(set_to_none=True)
            total.backward()
            if world > 1:  # the averaged loss is NaN on every rank if it is on one: all stop together
                average_gradients(list(model.parameters()), world)
                loss = _mean_over_ranks(loss.detach())
                total = _mean_over_ranks(total.detach())
            if not torch.isfinite(total):
                if leader:
                    _record(run_dir, cfg, status="failed", failed_step=step, last_finite_loss=last_finite,
                            error=f"non-finite loss at step {step}")
                raise TrainingFailed(f"non-finite loss at step {step} (last finite loss {last_finite:.4g}); "
                                     f"run recorded as failed in {run_dir / RECORD}")
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            for ema in emas.values():
                ema.update(model)
            last_finite = loss.item()
            history.append([step + 1, last_finite])
            wall += time.perf_counter() - t0
            bar.update(1)
            bar.set_postfix(loss=f"{last_finite:.4f}")
            if on_step is not None:
                on_step(step + 1, last_finite)
            stop = should_stop is not None and should_stop()
            if world > 1:  # every rank must agree, or the next collective deadlocks
                stop = bool(_mean_over_ranks(torch.tensor(float(stop))) > 0)
            if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps or stop:
                save_checkpoint(step + 1)
            if stop and step + 1 < cfg.steps:
                raise Preempted(step + 1)
    finally:
        bar.close()
    model.eval()
    if not leader:
        return TrainResult(run_dir, model, {d: e.model for d, e in emas.items()}, {})
    rec = _record_done(run_dir, cfg, budget, wall, history)
    return TrainResult(run_dir, model, {d: e.model for d, e in emas.items()}, rec)


def _mean_over_ranks(value: torch.Tensor) -> torch.Tensor:
    import torch.distributed as dist

    value = value.clone()
    dist.all_reduce(value)
    return value / dist.get_world_size()


def load_run(run_dir: str | Path, ema: float | None = None) -> tuple[RunConfig, torch.nn.Module, dict]:
    """The config and model (or one of its EMAs) of a finished or checkpointed run."""
    run_dir = Path(run_dir)
    state = ckpt.load(run_dir / CHECKPOINT)
    cfg = RunConfig.from_mapping(json.loads(state["config"]), source=str(run_dir))
    from tasks import get_task

    from .backbones import build_backbone

    task = get_task(cfg.task, **cfg.task_params)
    model = build_backbone(cfg.backbone, shape=tuple(task.shape),
                           num_classes=task.num_classes if cfg.conditional else 0, **cfg.backbone_params)
    if ema is None:
        weights = state["model"]
    else:
        key = repr(float(ema))
        if key not in state["ema"]:
            raise ckpt.CheckpointError(f"run {run_dir} has no EMA with decay {ema}; has {', '.join(state['ema'])}")
        weights = state["ema"][key]
    model.load_state_dict(weights)
    return cfg, model.eval(), state


__all__ = ["EMA", "TrainResult", "TrainingFailed", "Interrupted", "Preempted", "train", "load_run", "build",
           "average_gradients"]
