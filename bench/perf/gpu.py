"""The GPU check (``scripts/gpu_check.sh`` = ``hdfm-bench perf --only gpu``): JiT-B/16 at 256², trained
by the real trainer on synthetic images streamed from a dataset zip, per path, against the bare step.

Reported: the data loader's images/s alone; per path, training images/s of the real ``train`` loop and
its ratio to the bare backbone step on the same batch shape (forward, backward, AdamW: the goal is
≥ 0.95, i.e. data, draws, path, loss and EMA cost at most 5 %), sampling images/s at the recipe's
steps with the counted NFE, and peak device memory. Written to ``results/gpu.md``; the same code runs
on a CPU with a tiny model (the test), where memory is not reported.
"""
from __future__ import annotations

import datetime as _dt
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from hdfm_bench.core.io import write_text

from .harness import BENCH_PATHS, StepClock, machine

GPU_OUT = "results/gpu.md"
#: JiT-B/16 at 256² (JiT Tab. 2a), the scale of bench/specs/imagenet256-jit-b.toml
DEFAULTS = {"size": "B", "patch": 16, "resolution": 256, "batch": 64, "steps": 40, "images": 2048, "workers": 8,
            "classes": 1000}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_seconds(fn, device: torch.device, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _bare_ips(shape: tuple, classes: int, backbone: dict, batch: int, dev: torch.device, repeats: int) -> float:
    """Images/s of the bare backbone step: forward, backward, AdamW, inputs already on the device."""
    from hdfm_bench.backbones import build_backbone

    torch.manual_seed(0)
    model = build_backbone("vit", shape=shape, num_classes=classes, **backbone).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.rand(batch, *shape, device=dev) * 2 - 1
    z, t = torch.randn_like(x), torch.rand(batch, device=dev)
    y = torch.randint(classes, (batch,), device=dev)

    def bare() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            out = model(z, t, y)
        (out.float() - x).square().mean().backward()
        opt.step()

    return batch / _median_seconds(bare, dev, repeats)


def gpu_check(out: str | Path | None = GPU_OUT, *, device: str = "cuda", size: str = DEFAULTS["size"],
              patch: int = DEFAULTS["patch"], resolution: int = DEFAULTS["resolution"], batch: int = DEFAULTS["batch"],
              steps: int = DEFAULTS["steps"], images: int = DEFAULTS["images"], workers: int = DEFAULTS["workers"],
              classes: int = DEFAULTS["classes"], paths=tuple(BENCH_PATHS), repeats: int = 10,
              log_every: int = 5) -> dict[str, Any]:
    """Run the check and (unless ``out`` is None) write its markdown report; returns the figures."""
    from hdfm_bench.core.config import RunConfig
    from hdfm_bench.methods import get_path, get_sampler, recipe
    from hdfm_bench.tasks import get_task
    from hdfm_bench.tasks.prepare import prepare_zip
    from hdfm_bench.tasks.samples import synthetic_folder
    from hdfm_bench.training import train
    from hdfm_bench.training.data import StepBatches, batch_loader

    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("the GPU check needs a CUDA GPU (torch.cuda.is_available() is False); "
                           "on a CPU run it with device='cpu' and a tiny model")
    if steps < 3 * log_every:
        raise ValueError(f"steps must be at least {3 * log_every} (3 windows of {log_every} steps), got {steps}")
    backbone = {"size": size, "patch": patch}
    report: dict[str, Any] = {"device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else machine(),
                              "torch": torch.__version__, "backbone": backbone, "resolution": resolution,
                              "batch": batch, "steps": steps, "images": images, "workers": workers, "paths": []}
    with tempfile.TemporaryDirectory() as tmp:
        source = synthetic_folder(Path(tmp) / "folder", images, size=resolution, classes=min(classes, images))
        data = prepare_zip(source, Path(tmp) / "data.zip", resolution, workers=workers)["path"]
        task_params = {"root": str(data), "resolution": resolution, "hflip": True}
        task = get_task("imagezip", **task_params)

        def config(path: str, params: dict, n_steps: int) -> RunConfig:
            return RunConfig.from_mapping(dict(
                task="imagezip", task_params=task_params, path=path, path_params=params, backbone="vit",
                backbone_params=backbone, steps=n_steps, batch_size=batch, warmup=5, ema_decays=[0.9999, 0.9996],
                label_dropout=0.1, checkpoint_every=n_steps, device=device, workers=workers, log_every=log_every,
                out_dir=str(Path(tmp) / "runs")))

        # the loader alone: decode + collate + (pinned) host memory, no model
        loader = batch_loader(task.dataset("train"), StepBatches(config("noise_fm", {}, steps), len(task.dataset()), 0),
                              workers, pin=dev.type == "cuda")
        t0 = None
        for k, (x, _) in enumerate(loader):
            if k == 0:
                x_data = x.to(dev)  # for the paths whose prior is built from data (IHDM, cold diffusion)
            elif k == 1:  # after the workers' start-up
                t0 = time.perf_counter()
        report["loader_ips"] = (steps - 1) * batch / (time.perf_counter() - t0)

        report["bare_ips"] = _bare_ips(tuple(task.shape), task.num_classes, backbone, batch, dev, repeats)
        for name, params in paths:
            if dev.type == "cuda":
                torch.cuda.reset_peak_memory_stats(dev)
            clock = StepClock(every=log_every, skip=1)
            result = train(config(name, params, steps), progress=False, on_step=clock)
            row = {"path": name, "train_ips": batch / clock.step_seconds()}
            row["ratio"] = row["train_ips"] / report["bare_ips"]
            row["peak_gib"] = torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else None
            r = recipe(name)
            path = get_path(name, **params)
            smp = get_sampler(r.sampler, **({"steps": r.steps} if r.steps else {}))  # level paths: their K / T
            net = result.model.eval()
            z0 = path.prior(torch.randn(batch, *task.shape, device=dev), x_data)
            y = torch.randint(task.num_classes, (batch,), device=dev)

            def sample(smp=smp, path=path, z0=z0, target=r.target, net=net, y=y) -> None:
                with torch.no_grad(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
                    smp.sample(path, lambda zz, tt: net(zz, tt, y).float(), z0, target,
                               noise=lambda i: torch.randn_like(z0))

            row["sample_ips"] = batch / _median_seconds(sample, dev, max(1, repeats // 5), warmup=1)
            row["nfe"], row["sample_steps"] = smp.expected_nfe(path), r.steps or "path's"
            report["paths"].append(row)
            del result, net
    if out is not None:
        write_text(out, render(report))
    return report


def render(report: dict[str, Any]) -> str:
    """The markdown report of :func:`gpu_check`."""
    bb = report["backbone"]
    torch_version = "" if "torch" in report["device"] else f"; torch {report['torch']}"
    lines = ["# GPU check", "", f"Device: {report['device']}{torch_version}. Measured "
             f"{_dt.date.today().isoformat()} by `scripts/gpu_check.sh`. ViT {bb['size']}/{bb['patch']} (JiT) at "
             f"{report['resolution']}², batch {report['batch']}, {report['steps']} steps of the real trainer per "
             f"path (bf16 autocast on a GPU, EMA 0.9999 and 0.9996, label dropout 0.1, hflip) on "
             f"{report['images']:,} synthetic images streamed from a dataset zip by {report['workers']} DataLoader "
             "worker process(es). Training images/s: median over windows of steps (the first window left out). "
             "Bare step: "
             "the backbone's forward, backward and AdamW step on the same batch shape, inputs already on the device.",
             "", f"Data loader alone: {report['loader_ips']:,.0f} images/s. Bare backbone step: "
             f"{report['bare_ips']:,.0f} images/s.", "",
             "| path | train images/s | path step / bare step | sampling images/s | sampler steps (NFE) "
             "| peak memory |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in report["paths"]:
        mem = f"{r['peak_gib']:.1f} GiB" if r["peak_gib"] is not None else "—"
        lines.append(f"| {r['path']} | {r['train_ips']:,.1f} | {r['ratio']:.2f} | {r['sample_ips']:,.1f} | "
                     f"{r['sample_steps']} ({r['nfe']}) | {mem} |")
    worst = min(report["paths"], key=lambda r: r["ratio"])
    lines += ["", f"Goal: path step / bare step ≥ 0.95 for every path; lowest: {worst['path']} {worst['ratio']:.2f}."]
    return "\n".join(lines) + "\n"


def gpu_benchmark(repeats: int = 10) -> tuple[str, list[dict]]:
    """``hdfm-bench perf --only gpu``: the GPU check (results/gpu.md) with its summary in perf.md."""
    title = "GPU check (JiT-B/16 at 256²)"
    if not torch.cuda.is_available():
        return (f"## {title}\n\nNot measured: no CUDA GPU on this machine (`torch.cuda.is_available()` is False). "
                f"Run `scripts/gpu_check.sh` on a GPU node; it writes `{GPU_OUT}`."), []
    report = gpu_check(repeats=repeats)
    worst = min(report["paths"], key=lambda r: r["ratio"])
    body = (f"## {title}\n\nDevice: {report['device']}. Full report: `{GPU_OUT}`. Lowest path step / bare step: "
            f"{worst['path']} {worst['ratio']:.2f}; data loader {report['loader_ips']:,.0f} images/s.")
    return body, report["paths"]


def main(argv: list[str] | None = None) -> int:
    """``scripts/gpu_check.sh [options]``: the check with its sizes as options (defaults: JiT-B/16, 256²)."""
    import argparse
    import sys

    p = argparse.ArgumentParser(prog="gpu_check.sh", description=__doc__.split("\n\n")[0].replace("\n", " "))
    p.add_argument("--out", default=GPU_OUT, help="the report to write (default: %(default)s)")
    p.add_argument("--device", default="cuda", help="cuda, or cpu for a trial with a tiny model (default: %(default)s)")
    for key, value in DEFAULTS.items():
        p.add_argument(f"--{key}", type=type(value), default=value, help="(default: %(default)s)")
    p.add_argument("--repeats", type=int, default=10, help="bare-step repetitions (default: %(default)s)")
    args = p.parse_args(argv)
    try:
        sizes = {k: getattr(args, k) for k in DEFAULTS}
        report = gpu_check(args.out, device=args.device, repeats=args.repeats, **sizes)
    except (RuntimeError, ValueError) as err:
        print(f"gpu_check: error: {str(err).splitlines()[0]}", file=sys.stderr)
        return 2
    print(render(report), end="")
    return 0


__all__ = ["GPU_OUT", "DEFAULTS", "gpu_check", "render", "gpu_benchmark", "main"]


if __name__ == "__main__":
    raise SystemExit(main())
