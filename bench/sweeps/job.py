"""What one sweep job runs: train (or resume) one run, then evaluate its missing settings."""
from __future__ import annotations

import dataclasses
import signal
from pathlib import Path

import torch

from hdfm_bench.core.config import RunConfig
from hdfm_bench.core.hashing import KEY_DIGITS, arrays_sha256
from hdfm_bench.core.io import locked
from hdfm_bench.core.rundir import read_record
from hdfm_bench.core.threads import set_threads
from hdfm_bench.evaluation.evaluate import Evaluation, evaluate_run, evaluate_shard, load_shards, missing_shards
from hdfm_bench.evaluation.protocol import EvalSettings
from hdfm_bench.evaluation.store import ResultStore
from hdfm_bench.sampling.live import grid_hook
from hdfm_bench.training import Preempted, train

from . import submitit_adapter as adapter
from .owner import StopWatch


class PreemptionFlag:
    """Defers submitit's preemption handler (USR2) to a step boundary.

    submitit's handler checkpoints and requeues at once, possibly in the middle of an optimizer
    step. This flag records the signal; the trainer polls it after each step, writes a
    checkpoint of that step, and only then is submitit's handler run (→ ``SweepJob.checkpoint``,
    requeue, exit).
    """

    def __init__(self) -> None:
        self.signum, self.frame, self.previous, self.sig = None, None, None, None

    def install(self) -> PreemptionFlag:
        if not adapter.in_main_thread():
            return self
        self.sig = adapter.preemption_signal()
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


def weights_digest(model: torch.nn.Module) -> str:
    """A short hash of a model's weights (equal on every rank of a data-parallel job)."""
    return arrays_sha256(*model.state_dict().values())[:KEY_DIGITS]


class SweepStore:
    """A sweep's results store, each evaluation key measured once: :meth:`measure` evaluates a setting
    unless its key is stored, and appends its rows labelled with the sweep, the key and the label."""

    def __init__(self, path: str | Path, sweep: str) -> None:
        self.store, self.sweep = ResultStore(path), sweep
        self.keys = {r.get("eval_key") for r in self.store.rows()}

    def __contains__(self, key: str) -> bool:
        return key in self.keys

    def measure(self, run_dir: str | Path, setting: EvalSettings, key: str, label: str,
                **kwargs) -> list[dict] | None:
        """The new rows, or None when ``key`` was already stored (``kwargs``: for ``evaluate_run``)."""
        if key in self.keys:
            return None
        rows, _ = evaluate_run(run_dir, setting, method=label, **kwargs)
        self.store.append([{**r, "sweep": self.sweep, "eval_key": key, "label": label} for r in rows])
        self.keys.add(key)
        return rows


@dataclasses.dataclass
class SweepJob:
    """One job: picklable; submitit calls it in the job process. ``checkpoint`` makes it requeueable."""

    sweep: str
    config: dict
    label: str
    evals: list
    store: str
    threads: int = 1
    train: bool = True
    #: a shard job: [index of the setting in ``evals``, shard k] (k = -1: only merge); no training
    shard: list | None = None
    shards_dir: str = ""
    #: local executor: the ``sweep`` command that owns this job and its stop file (sweeps.owner)
    owner: dict | None = None
    stop_file: str = ""

    def __call__(self) -> dict:
        set_threads(max(1, self.threads))
        watch = StopWatch(self.owner, self.stop_file).start()
        try:
            return self._shard() if self.shard is not None else self._run(watch)
        except (Preempted, KeyboardInterrupt):
            if watch.is_set():  # stopped by its sweep: checkpoint written, no result, no requeue
                watch.exit()
            raise
        finally:
            watch.close()

    def _run(self, watch: StopWatch) -> dict:
        env = adapter.job_environment()
        world = env.num_tasks if env is not None else 1
        rank = env.global_rank if env is not None else 0
        if world > 1:
            adapter.init_distributed()
        flag = PreemptionFlag().install()
        cfg = RunConfig.from_mapping(self.config, source="sweep job")
        summary = {"run_id": cfg.run_id(), "rank": rank, "evaluated": [], "skipped": []}
        try:
            if self.train:
                try:
                    result = train(cfg, progress=False, should_stop=lambda: flag.is_set() or watch.is_set(),
                                   on_checkpoint=grid_hook(cfg.run_dir()))
                    summary["starts"] = result.record.get("starts")
                    summary["weights"] = weights_digest(result.model)
                except Preempted:
                    if watch.is_set():
                        raise
                    if rank != 0:
                        raise SystemExit(-1) from None  # the leader requeues the whole job
                    flag.forward()
                    raise
        finally:
            if world > 1:
                import torch.distributed as dist

                dist.destroy_process_group()
        if rank == 0:
            self._evaluate(cfg, flag, summary, watch)
        flag.uninstall()
        return summary

    def _evaluate(self, cfg: RunConfig, flag: PreemptionFlag, summary: dict, watch: StopWatch) -> None:
        store = SweepStore(self.store, self.sweep)  # this run's keys are written only by this job
        step = cfg.steps if self.train else int(read_record(cfg.run_dir()).get("step", cfg.steps))
        for e in self.evals:
            setting = EvalSettings(**e)
            if setting.shards > 1:  # measured by the sweep's shard jobs
                continue
            key = setting.key(cfg.run_id(), step)
            if key in store:
                summary["skipped"].append(key)
                continue
            if watch.is_set():
                raise KeyboardInterrupt
            if flag.is_set():
                flag.forward()
            store.measure(cfg.run_dir(), setting, key, f"{self.label} {setting.label}".strip())
            summary["evaluated"].append(key)

    def _shard(self) -> dict:
        """Measure one shard of one setting into its shard file, then merge if every shard is there."""
        index, k = self.shard
        cfg = RunConfig.from_mapping(self.config, source="sweep job")
        setting = EvalSettings(**self.evals[index])
        ev = Evaluation(cfg.run_dir(), setting)
        store = ResultStore(self.store)
        summary = {"run_id": cfg.run_id(), "key": ev.key, "shard": k, "merged": False}
        if ev.key in {r.get("eval_key") for r in store.rows()}:
            return {**summary, "skipped": True}
        if k >= 0:
            evaluate_shard(ev, k, self.shards_dir)
        summary["merged"] = merge_if_complete(ev, self.shards_dir, store, sweep=self.sweep,
                                              label=f"{self.label} {setting.label}".strip())
        return summary

    def checkpoint(self, *args, **kwargs):
        """submitit's requeue hook: resubmit this same job (it resumes from the run's checkpoint)."""
        return adapter.requeue(self)


def merge_if_complete(ev: Evaluation, folder: str | Path, store: ResultStore, *, sweep: str, label: str) -> bool:
    """When every shard file of ``ev`` exists, compute its rows and append them — once: the shard jobs
    that finish together take a lock, and the first one in writes (the others see the key stored)."""
    if missing_shards(ev, folder):
        return False
    with locked(Path(folder) / ev.key / ".merge.lock"):
        if ev.key in {r.get("eval_key") for r in store.rows()}:
            return False
        rows = ev.rows(load_shards(ev, folder), method=label)
        store.append([{**r, "sweep": sweep, "eval_key": ev.key, "label": label} for r in rows])
    return True


__all__ = ["SweepJob", "PreemptionFlag", "weights_digest", "merge_if_complete"]
