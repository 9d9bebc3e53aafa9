"""The trainer: one RunConfig → a trained model, checkpoints that resume exactly, a run record.

Every compared run goes through this loop with the same backbone, budget and data pipeline:
AdamW with linear warm-up and grad clipping, EMA copies with several decays, class-conditional
training with label dropout (null class = num_classes, docs/methods.md §2.8), bf16 autocast on GPU.

Randomness: model init and dropout use the global torch RNG (seeded); noise, times and label
dropout draw from one dedicated generator; the data order of epoch e is a permutation drawn from a
generator seeded by (seed, e), so step s alone fixes which images it sees. All RNG states and the
step go into each checkpoint, so a resumed run ends with the same weights as an uninterrupted one.
"""
from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable

import torch
from tqdm.auto import tqdm

from hdfm_bench.core.config import RunConfig
from hdfm_bench.core.rundir import checkpoint_path
from hdfm_bench.methods import validation

from . import checkpoint as ckpt
from .build import build, resolve_device
from .distributed import average_gradients, mean_over_ranks, rank_and_world
from .rules import (
    Interrupted,
    Preempted,
    TrainResult,
    batch_indices,
    budget,
    checkpoint_payload,
    ema_decay,
    load_own_checkpoint,
    lr_at,
    non_finite_failure,
    record,
    record_done,
    record_start,
)


class EMA:
    """Exponential moving average of parameters: p̄ ← d p̄ + (1 − d) p, buffers copied.

    With ``warmup`` the decay of update n follows :func:`rules.ema_decay` (k-diffusion's
    min(d, (1 + n)/(10 + n))), so short runs get a useful average early.
    """

    def __init__(self, model: torch.nn.Module, decay: float, warmup: bool = True):
        self.decay, self.warmup, self.updates = decay, warmup, 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    def current_decay(self) -> float:
        return ema_decay(self.decay, self.updates) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        d = self.current_decay()
        for p_ema, p in zip(self.model.parameters(), model.parameters()):
            p_ema.lerp_(p.detach(), 1.0 - d)
        for b_ema, b in zip(self.model.buffers(), model.buffers()):
            b_ema.copy_(b)
        self.updates += 1


def train_torch(cfg: RunConfig, *, progress: bool = True, stop_at: int | None = None,
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
    task, path, objective, model = build(cfg)
    rank, world = rank_and_world()
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

    ck = checkpoint_path(run_dir)
    if ck.exists():
        state = load_own_checkpoint(ck, cfg)
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

    spent = budget(cfg, n_params, model.config, task.describe(), processes=world)
    leader = rank == 0
    if leader:
        record_start(run_dir, cfg, start, spent, objective)

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
        ckpt.save(ck, checkpoint_payload(cfg, step, model=model.state_dict(),
                                         ema={d: e.model.state_dict() for d, e in emas.items()},
                                         ema_updates=next(iter(emas.values())).updates, optimizer=opt.state_dict(),
                                         rng=rng, history=history, wall_time=wall))
        record(run_dir, cfg, step=step)  # after the checkpoint exists: status reads progress here

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
            idx = batch_indices(cfg, len(x_train), step)[shard]
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
                group["lr"] = lr_at(cfg.lr, cfg.warmup, step)
            opt.zero_grad(set_to_none=True)
            total.backward()
            if world > 1:  # the averaged loss is NaN on every rank if it is on one: all stop together
                average_gradients(list(model.parameters()), world)
                loss = mean_over_ranks(loss.detach())
                total = mean_over_ranks(total.detach())
            if not torch.isfinite(total):
                raise non_finite_failure(run_dir, cfg, step, last_finite, write=leader)
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
                stop = bool(mean_over_ranks(torch.tensor(float(stop))) > 0)
            if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps or stop:
                save_checkpoint(step + 1)
            if stop and step + 1 < cfg.steps:
                raise Preempted(step + 1)
    finally:
        bar.close()
    model.eval()
    if not leader:
        return TrainResult(run_dir, model, {d: e.model for d, e in emas.items()}, {})
    rec = record_done(run_dir, cfg, spent, wall, history)
    return TrainResult(run_dir, model, {d: e.model for d, e in emas.items()}, rec)



__all__ = ["EMA", "train_torch"]
