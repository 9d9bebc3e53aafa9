"""The torch trainer: one RunConfig → a trained model, checkpoints that resume exactly, a run record.

Every compared run goes through this loop with the same backbone, budget and data pipeline:
AdamW with linear warm-up and grad clipping, EMA copies with several decays, class-conditional
training with label dropout (null class = num_classes, docs/methods.md §2.8), bf16 autocast on GPU
(and on a CPU with ``bf16_on_cpu``), optionally ``torch.compile``.

Data: small tasks are indexed in memory; streamed tasks (image folders, zips) go through a
``DataLoader`` with worker processes, pinned memory and prefetching, whose batch sampler yields the
indices of each step. The order of epoch e is a permutation drawn from (seed, e), so step s alone
fixes which images it sees; each of W data-parallel processes reads only its slice of a batch.

Randomness: noise, times, label dropout and flips are drawn on the training device from one
generator seeded with ``seed + 1`` — for the whole global batch on every rank, each rank keeping its
slice — so W processes draw what one process draws, and the generator's state goes into each
checkpoint: a resumed run ends with the same weights as an uninterrupted one, on a GPU too.

Data parallelism is ``DistributedDataParallel`` (gradients averaged over ranks: W processes take the
step one process takes on the whole batch). The loss is read back, checked and logged every
``log_every`` steps (and at checkpoints), not every step; a non-finite loss is recorded with the first
bad step of the window and the last finite loss.
"""
from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable

import torch
from tqdm.auto import tqdm

from hdfm_bench.core.config import RunConfig
from hdfm_bench.core.messages import one_line
from hdfm_bench.core.rundir import checkpoint_path
from hdfm_bench.methods import validation

from . import checkpoint as ckpt
from .build import build, compile_module, resolve_device
from .checkpoint import check_not_older, checkpoint_payload, keep_checkpoint, load_own_checkpoint
from .data import StepBatches, batch_loader, next_batch
from .distributed import RankFailure, check_divisible, mean_over_ranks, rank_and_world, timeout_s
from .records import budget, non_finite_failure, owned_run, record, record_done, record_start
from .rules import Interrupted, Preempted, TrainingFailed, TrainResult, batch_indices, ema_decay, kept, lr_at
from .tblog import TrainLog


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
                should_stop: Callable[[], bool] | None = None,
                on_checkpoint: Callable[[int, TrainLog], None] | None = None) -> TrainResult:
    """Train (or resume) the run of ``cfg``; returns the model, its EMAs and the run record.

    Re-running an identical config resumes from its last checkpoint; a finished run returns at
    once. ``stop_at`` raises :class:`Interrupted` before that step (a simulated kill).
    ``should_stop`` is polled after every step (with several processes: at every loss read-back):
    when true, the trainer writes a checkpoint of that step and raises :class:`Preempted`.
    ``on_step(step, loss)`` is called for every step, at the read-backs; ``on_checkpoint(step, log)``
    on rank 0 after each kept checkpoint (``keep_every``) and the final one (:func:`rules.kept`) — not
    after one written to stop — with the run's TensorBoard log (:mod:`.tblog`; e.g. a sample grid).

    Inside a torch.distributed group of W processes (data parallel, e.g. one per GPU of a Slurm
    job), rank r trains on rows [r B/W, (r+1) B/W) of each global batch, DistributedDataParallel
    averages the gradients, and only rank 0 writes checkpoints and records.
    """
    task, path, objective, model = build(cfg)
    rank, world = rank_and_world()
    check_divisible(cfg.batch_size, world)
    shard = slice(rank * cfg.batch_size // world, (rank + 1) * cfg.batch_size // world)
    device = resolve_device(cfg.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", torch.cuda.current_device())
    run_dir = cfg.run_dir()
    def owned() -> TrainResult:  # inside the run's lock (records.owned_run)
        model.to(device)
        emas = {d: EMA(model, d) for d in cfg.ema_decays}
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2),
                                weight_decay=cfg.weight_decay)
        gen = torch.Generator(device=device).manual_seed(cfg.seed + 1)  # every rank draws the global batch
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

        spent = budget(cfg, n_params, model.config, task.describe(), processes=world)
        leader = rank == 0
        if leader:
            record_start(run_dir, cfg, start, spent, objective)
        net = model
        if world > 1:
            from torch.nn.parallel import DistributedDataParallel

            net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        if cfg.compile:
            net = compile_module(net, device)

        def save_checkpoint(step: int) -> None:
            if not leader:
                return
            rng = {"torch": torch.get_rng_state(), "generator": gen.get_state()}
            if device.type == "cuda":
                rng["cuda"] = torch.cuda.get_rng_state()
            check_not_older(ck, step)
            log.flush()  # every logged step up to this checkpoint is on disk before it is (see tblog)
            ckpt.save(ck, checkpoint_payload(cfg, step, model=model.state_dict(),
                                             ema={d: e.model.state_dict() for d, e in emas.items()},
                                             ema_updates=next(iter(emas.values())).updates, optimizer=opt.state_dict(),
                                             rng=rng, history=history, wall_time=wall))
            record(run_dir, cfg, step=step)  # after the checkpoint exists: status reads progress here
            keep_checkpoint(run_dir, cfg, step)

        conditional = cfg.conditional and task.num_classes > 0  # unconditional data trains unconditionally
        null = task.num_classes if conditional else None
        use_bf16 = cfg.bf16 and (device.type == "cuda" or cfg.bf16_on_cpu)
        autocast = torch.autocast(device.type, dtype=torch.bfloat16) if use_bf16 else contextlib.nullcontext()
        B, shape = cfg.batch_size, tuple(task.shape)
        if task.streaming:  # read lazily by worker processes; each rank its slice of every batch
            dataset = task.dataset("train")
            n_data = len(dataset)
            batches = iter(batch_loader(dataset, StepBatches(cfg, n_data, start, shard), cfg.workers,
                                        pin=device.type == "cuda"))
        else:
            x_train, y_train = task.load("train")
            n_data = len(x_train)
        bar = tqdm(total=cfg.steps, initial=start, disable=not progress, desc=cfg.run_id(), unit="step",
                   dynamic_ncols=True, leave=False)
        last_finite = history[-1][1] if history else float("nan")
        window: list[torch.Tensor] = []  # this rank's (loss, total, grad norm) since the last read-back
        logged_wall = wall

        def read_back(step: int) -> None:
            """Bring the window's losses to the host (mean over ranks), check them, log them."""
            nonlocal last_finite, logged_wall
            if not window:
                return
            losses = torch.stack(window)  # (k, 3): the objective's loss, the total (with LayerSync's term), grad norm
            if world > 1:
                losses = mean_over_ranks(losses)
            values = losses.tolist()
            first = step + 1 - len(values)
            for k, (v, total, _) in enumerate(values):
                if not math.isfinite(total):
                    raise non_finite_failure(run_dir, cfg, first + k, last_finite, write=leader)
                last_finite = v
                history.append([first + k + 1, v])
                if on_step is not None:
                    on_step(first + k + 1, v)
            window.clear()
            log.steps(first + 1, [(v, lr_at(cfg.lr, cfg.warmup, first + k), g) for k, (v, _, g) in enumerate(values)],
                      wall - logged_wall, B)
            logged_wall = wall
            bar.update(len(values))
            bar.set_postfix(loss=f"{last_finite:.4f}")

        log = TrainLog(run_dir, cfg.tb and leader, start)
        net.train()
        try:
            for step in range(start, cfg.steps):
                if stop_at is not None and step == stop_at:
                    raise Interrupted(f"stopped before step {step}")
                t0 = time.perf_counter()
                if task.streaming:
                    x, y_data = next_batch(batches)
                    x = x.to(device, non_blocking=True)
                else:
                    idx = batch_indices(cfg, n_data, step)[shard]
                    x, y_data = x_train[idx].to(device, non_blocking=True), y_train[idx]
                if task.augments:  # e.g. hflip: one uniform per image of the global batch
                    x = task.augment(x, torch.rand(B, generator=gen, device=device)[shard])
                eps = torch.randn((B, *shape), generator=gen, device=device)[shard]
                t = path.sample_t(torch.rand(B, generator=gen, device=device, dtype=x.dtype)[shard])
                drop = torch.rand(B, generator=gen, device=device)[shard] < cfg.label_dropout
                y = torch.where(drop, null, y_data.to(device, non_blocking=True)) if null is not None else None
                with validation(step == start):  # check inputs once; the loss read-back catches the rest
                    z = path.corrupt(x, eps, t)
                    with autocast:
                        raw = net(z, t, y)
                    loss = objective.loss(raw.float(), x, eps, t, z).mean()
                aux = getattr(model, "last_aux_loss", None)
                total = loss + aux if aux is not None else loss
                for group in opt.param_groups:
                    group["lr"] = lr_at(cfg.lr, cfg.warmup, step)
                opt.zero_grad(set_to_none=True)
                total.backward()  # DistributedDataParallel averages the gradients over the ranks here
                grad_norm = None  # the global norm before clipping, for the log
                if cfg.grad_clip:
                    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                elif log:
                    grad_norm = torch.nn.utils.get_total_norm([p.grad for p in model.parameters()
                                                               if p.grad is not None])
                opt.step()
                for ema in emas.values():
                    ema.update(model)
                norm = torch.full_like(loss, math.nan) if grad_norm is None else grad_norm.detach().to(loss.dtype)
                window.append(torch.stack([loss.detach(), total.detach(), norm]))
                wall += time.perf_counter() - t0
                done = step + 1
                checkpoint_now = done % cfg.checkpoint_every == 0 or done == cfg.steps
                stop = False
                if world == 1 and should_stop is not None:
                    stop = should_stop()
                if done % cfg.log_every == 0 or checkpoint_now or stop:
                    read_back(step)
                    if world > 1:  # every rank must agree, or the next collective deadlocks
                        flag = float(should_stop is not None and should_stop())
                        stop = bool(mean_over_ranks(torch.tensor(flag, device=device)) > 0)
                if checkpoint_now or stop:
                    save_checkpoint(done)
                if leader and on_checkpoint is not None and kept(cfg, done):
                    on_checkpoint(done, log)
                    log.flush()
                if stop and done < cfg.steps:
                    raise Preempted(done)
        except RuntimeError as err:
            if world == 1 or isinstance(err, (RankFailure, Interrupted, Preempted, TrainingFailed)):
                raise
            # a collective that failed or timed out: some other process of the job has died
            raise RankFailure(f"data-parallel rank {rank} of {world} stopped at a collective: {one_line(err)[:300]} "
                              f"(another process has probably died; collectives time out after "
                              f"{timeout_s():g} s)") from None
        finally:
            bar.close()
            log.close()
        net.eval()
        model.eval()
        if not leader:
            return TrainResult(run_dir, model, {d: e.model for d, e in emas.items()}, {})
        rec = record_done(run_dir, cfg, spent, wall, history)
        return TrainResult(run_dir, model, {d: e.model for d, e in emas.items()}, rec)

    with owned_run(run_dir, cfg, leader=rank == 0):
        return owned()


__all__ = ["EMA", "train_torch"]
