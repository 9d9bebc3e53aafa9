"""The ``hdfm-bench`` command: thin wrappers over the Python API.

Every subcommand has ``--help`` and works with no arguments. Bad input (an unknown name, a bad
parameter, an incompatible combination) prints one line ``hdfm-bench: error: ...`` and exits 2
before anything is written; results are written atomically.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from hdfm_bench.core.config import BACKENDS, DOCS, RunConfig
from hdfm_bench.core.io import check_output_file
from hdfm_bench.core.overrides import OverrideError, parse_assignments
from hdfm_bench.core.signals import EXIT_TERMINATED, Preempted, Terminated, Termination
from hdfm_bench.core.threads import THREADS_ENV, set_threads
from hdfm_bench.evaluation.plots import PLOTS
from hdfm_bench.evaluation.protocol import FEATURE_METRICS
from hdfm_bench.evaluation.tables import FORMATS as TABLE_FORMATS
from hdfm_bench.methods import ConfigError
from hdfm_bench.methods.registry import describe as registry
from hdfm_bench.perf.runner import BENCHMARKS, DEFAULT_REPEATS
from hdfm_bench.sampling.settings import DEFAULT_BATCH_SIZE, DEFAULT_CFG_INTERVAL, SamplingSettings
from hdfm_bench.specs import DEFAULT_SPEC, SPECS_DIR, shipped
from hdfm_bench.sweeps.submitit_adapter import EXECUTORS

REPRODUCTIONS = ("toy", "ablation", "spectral", "headtohead", "stability")
#: SIGTERM: at the next step boundary while training, at once elsewhere (core.signals)
TERMINATION = Termination()
PLOT_KINDS = [*PLOTS, "losses"]


def _fmt_default(v) -> str:
    return repr(v) if isinstance(v, str) else str(v)


def cmd_list(args: argparse.Namespace) -> int:
    reg = registry()
    if args.json:
        print(json.dumps(reg, indent=2, default=str))
        return 0
    print(f"Convention: {reg['convention']}\n")
    print(f"PATHS ({len(reg['paths'])})")
    for name, p in reg["paths"].items():
        d = p["default"]
        levels = f", {p['levels']} levels" if p["levels"] else ""
        print(f"  {name:<19} {p['summary']}{levels}")
        print(f"  {'':<19} targets {', '.join(p['targets'])}; loss spaces {', '.join(p['loss_spaces'])}; "
              f"default {d['target']}-prediction, {d['loss']}-loss ({d['norm']})")
        for prm in p["parameters"]:
            print(f"  {'':<21}{prm['name']} = {_fmt_default(prm['default'])}  ({prm['type']}) {prm['doc']}")
    print(f"\nTARGETS ({len(reg['targets'])})")
    for name, doc in reg["targets"].items():
        print(f"  {name:<19} {doc}")
    print(f"\nSAMPLERS ({len(reg['samplers'])})")
    for name, s in reg["samplers"].items():
        params = ", ".join(f"{q['name']}={_fmt_default(q['default'])}" for q in s["parameters"])
        kind = "stochastic" if s["stochastic"] else "deterministic"
        print(f"  {name:<19} {s['summary']}; {kind}; params: {params}")
        print(f"  {'':<19} paths: {', '.join(s['paths'])}")
    return 0


def _times(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got '{text}'") from None


def cmd_gallery(args: argparse.Namespace) -> int:
    from hdfm_bench.experiments.gallery import make_gallery

    out = make_gallery(args.out, times=args.times, seed=args.seed)
    print(f"wrote {out}")
    return 0


def cmd_perf(args: argparse.Namespace) -> int:
    from hdfm_bench.perf import runner

    out = runner.run(only=args.only, out=args.out, repeats=args.repeats)
    print(f"wrote {out}")
    return 0


def _config_from_args(args: argparse.Namespace) -> RunConfig:
    overrides = list(args.set or [])
    for f in RunConfig.fields():
        value = getattr(args, f.name, None)
        if value is None:
            continue
        if isinstance(f.default, bool) or f.type in (bool, "bool"):
            overrides.append(f"{f.name}={'true' if value else 'false'}")
        elif f.name.endswith("_params"):
            overrides += [f"{f.name}.{kv}" for kv in value]
        elif f.name == "ema_decays":
            overrides.append(f"ema_decays=[{', '.join(str(v) for v in value)}]")
        elif isinstance(value, str):
            overrides.append(f"{f.name}={json.dumps(value)}")
        else:
            overrides.append(f"{f.name}={value}")
    return RunConfig.load(args.config, overrides)


def cmd_train(args: argparse.Namespace) -> int:
    from hdfm_bench.training import train

    cfg = _config_from_args(args)
    with TERMINATION.training():
        res = train(cfg, progress=not args.no_progress, should_stop=TERMINATION.should_stop)
    rec = res.record
    print(f"run {rec['run_id']}: {rec['status']}, final loss {rec.get('final_loss'):.5g}, "
          f"{rec['budget']['parameters']:,} parameters, {rec['budget']['images_seen']:,} images seen, "
          f"{rec['budget'].get('wall_time_s')} s -> {res.run_dir}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from hdfm_bench.core.rundir import SAMPLES_DIR
    from hdfm_bench.sampling.generate import generate
    from hdfm_bench.sampling.output import write_samples

    fields = _sampling_fields(args)
    if len(fields["seed"]) != 1:
        raise ValueError("sample takes one --seed")
    fields["seed"] = fields["seed"][0]
    settings = SamplingSettings(**fields)
    folder = args.out is None or args.out.endswith(("/", os.sep)) or Path(args.out).is_dir()
    if not folder:
        for ext in ("png", "pt", "json"):
            check_output_file(f"{args.out}.{ext}", "--out")
    elif args.out is not None:
        check_output_file(Path(args.out) / "x", "--out")
    if args.save_samples:
        check_output_file(args.save_samples, "--save-samples")
    out = generate(args.run, settings, progress=True)
    name = (f"{out['protocol']['sampler']}-{out['protocol']['steps']}-cfg{args.cfg_scale:g}-ema{args.ema}-"
            f"seed{fields['seed']}" + (f"-step{args.checkpoint_step}" if args.checkpoint_step else ""))
    stem = (Path(args.out) / name if args.out else Path(args.run) / SAMPLES_DIR / name) if folder else args.out
    files = write_samples(out, stem)
    if args.save_samples:
        from hdfm_bench.sampling.output import SampleWriter
        from hdfm_bench.tasks import unit_to_u8

        writer = SampleWriter.open(args.save_samples, len(out["samples"]), tuple(out["samples"].shape[1:]))
        writer.add(unit_to_u8(out["samples"]), out["labels"], range(len(out["samples"])))
        print(f"wrote {writer.close()}")
    p = out["protocol"]
    print(f"{p['n']} samples, sampler {p['sampler']} ({p['steps']} steps, {p['nfe']} NFE counted), "
          f"CFG {p['cfg_scale']:g} on {p['cfg_interval']}, EMA {p['ema']}, checkpoint step "
          f"{p['checkpoint_step']} -> {files['grid']}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from hdfm_bench.evaluation.evaluate import Evaluation, evaluate_run, evaluate_shard
    from hdfm_bench.evaluation.protocol import TABLE_METRICS, EvalSettings
    from hdfm_bench.evaluation.store import ResultStore

    store = ResultStore(args.store)
    store.check_writable()  # before any work: a bad --store must not cost an evaluation
    fields = _sampling_fields(args)
    seeds = fields.pop("seed")
    all_settings = [EvalSettings(**fields, seed=seed, extractor=args.extractor, reference_split=args.reference_split,
                                 reference=args.reference, metrics=tuple(args.metrics), shards=args.shards)
                    for seed in seeds]  # all validated before the first evaluation
    for settings in all_settings:  # the seed ritual: several disjoint image-seed ranges, one evaluation each
        if args.shard is not None:  # one shard only (e.g. one array task); merged when all exist
            ev = Evaluation(args.run, settings)
            folder = Path(args.shard_dir) if args.shard_dir else Path(args.run) / "eval-shards"
            print(f"wrote {evaluate_shard(ev, args.shard, folder, progress=True)}")
            continue
        rows, _ = evaluate_run(args.run, settings, method=args.method, progress=True,
                               save_samples=args.save_samples, shard_dir=args.shard_dir)
        store.append(rows)
        p = rows[0]["protocol"]
        shown = {r["metric"]: r["value"] for r in rows if r["metric"] in TABLE_METRICS}
        print(", ".join(f"{k} {v:.4g}" for k, v in shown.items()))
        print(f"protocol: {p['extractor']} ({p['extractor_hash']}), n {p['n_gen']} (image seeds {p['image_seeds']}, "
              f"{p['shards']} shard(s)) vs {p['n_ref']} {p['reference_split']}, {p['sampler']} {p['steps']} steps / "
              f"{p['nfe']} NFE, CFG {p['cfg_scale']:g}, EMA {p['ema']}, seed {p['seed']} -> {len(rows)} rows in "
              f"{args.store}" + (f"; samples in {args.save_samples}" if args.save_samples else ""))
    return 0


def cmd_reference(args: argparse.Namespace) -> int:
    """Reference statistics (mu, sigma; optionally the features) of a task split or an image folder."""
    from hdfm_bench.evaluation.reference_stats import reference_statistics

    out = reference_statistics(args.source, args.out, split=args.split, extractor=args.extractor,
                               with_features=args.features, batch_size=args.batch_size, progress=True)
    print(f"wrote {out['path']}: {out['n']} images, {out['dim']}-d {out['extractor']} ({out['extractor_hash']}) "
          f"statistics{' and features' if args.features else ''}; sha256 {out['sha256']}")
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    """An image folder → an EDM-style dataset zip (and optionally its reference statistics)."""
    from hdfm_bench.tasks.prepare import prepare_zip

    if args.reference_stats:  # checked before any image is encoded
        from hdfm_bench.evaluation.metrics.extractors import get_extractor_info

        check_output_file(args.reference_stats, "--reference-stats", (".npz",))
        get_extractor_info(args.extractor)
        if args.batch_size < 1:
            raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    out = prepare_zip(args.source, args.dest, args.resolution, split=args.split, workers=args.workers,
                      on_error=args.on_error, progress=True)
    for error in out["skipped"]:
        print(f"hdfm-bench: skipped: {error}", file=sys.stderr)
    skipped = f", {len(out['skipped'])} unreadable image(s) skipped" if out["skipped"] else ""
    print(f"wrote {out['path']}: {out['images']} images at {args.resolution}x{args.resolution}, "
          f"{out['classes']} classes{skipped}")
    if args.reference_stats:
        args.source, args.out, args.features = out["path"], args.reference_stats, False
        return cmd_reference(args)
    return 0


def cmd_train_extractor(args: argparse.Namespace) -> int:
    """Train a domain classifier (the FID extractor of a small task) and write the file that gets shipped."""
    from hdfm_bench.evaluation.metrics.extractors import train_extractor

    out = train_extractor(args.task, args.out or f"domain-{args.task}.pt")
    print(f"wrote {out['path']} (+ .json): {out['extractor']}, test accuracy {out['test_accuracy']:.4f}, trained in "
          f"{out['train_seconds']:.0f} s; sha256 {out['sha256']}. To ship it: put both files in "
          f"hdfm_bench/evaluation/metrics/weights/ and pin this sha256 in EXTRACTORS.")
    return 0


def _read_store(path: str, use: str):
    """A results store as a frame; what it had to leave out is printed as notes (line numbers), not as a
    Python warning; a store that does not exist or holds no rows is an error naming it (``use``: what the
    rows were for)."""
    import warnings

    from hdfm_bench.evaluation.store import ResultStore, StoreWarning

    store = ResultStore(path)
    if Path(path).is_file() and store.file != Path(path):
        raise ValueError(f"--store {path} is not a results store (a store is a .jsonl file or a folder holding one)")
    if not store.file.is_file():
        raise FileNotFoundError(f"results store not found: {store.file}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StoreWarning)
        df = store.read()
    if df.empty and store.notes:
        raise ValueError(f"results store {store.file} holds no readable rows ({store.notes[0]}"
                         + (f"; and {len(store.notes) - 1} more" if len(store.notes) > 1 else "") + ")")
    if df.empty:
        raise ValueError(f"no results to {use} in {path}")
    for note in store.notes:
        print(f"note: {store.file}: left out {note}", file=sys.stderr)
    return df


def cmd_table(args: argparse.Namespace) -> int:
    from hdfm_bench.core.io import write_text
    from hdfm_bench.evaluation import tables
    from hdfm_bench.evaluation.protocol import TABLE_METRICS

    if args.spec:  # a sweep: its rows, labelled by the spec's varying axes (seeds aggregated)
        from hdfm_bench.sweeps.api import Sweep, sweep_frame

        df = sweep_frame(Sweep.load(args.spec, overrides=args.set or [], check=False), with_setting=not args.best)
        if df.empty:
            raise ValueError(f"sweep {args.spec}: no results stored yet (see hdfm-bench status {args.spec})")
    else:
        df = _read_store(args.store, "tabulate")
    if args.out:
        check_output_file(args.out, "--out")
    metrics = args.metric or [m for m in TABLE_METRICS if m in set(df.get("metric", []))]
    grid = None
    if args.best:
        axes = [a.strip() for a in args.best.split(",") if a.strip()]
        select, report = tables.parse_seeds(args.select_seeds), tables.parse_seeds(args.report_seeds, "--report-seeds")
        tables.check_selection(axes, select, report)
        df, grid = tables.best_settings(df, axes, select, report, metric=args.select_metric)
    text, warnings = tables.make_table(df, fmt=args.format, columns=metrics, allow_mixed=args.allow_mixed,
                                       split=args.split)
    if grid is not None:
        text = (f"Best setting per row over {' × '.join(axes)}, selected on sampling seeds {args.select_seeds} "
                f"({args.select_metric}), reported on sampling seeds {args.report_seeds}:\n\n{text}\n\n"
                f"Selection grid ({args.select_metric} on seeds {args.select_seeds}; * = chosen):\n\n"
                + tables.selection_grid(grid, axes, args.select_metric, args.format))
    print(text)
    for w in warnings:
        print(f"note: {w}", file=sys.stderr)
    if args.out:
        write_text(args.out, text)
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from hdfm_bench.core.rundir import read_record
    from hdfm_bench.evaluation import plots

    df = _read_store(args.store, "plot")
    out = Path(args.out_dir)
    kinds = args.kind or PLOT_KINDS

    def losses(frame, dest):  # training curves of the runs in the store, from their run.json
        hist = {}
        for (method, run_id), _ in frame.groupby(["method", "run_id"]):
            rec = read_record(Path(args.runs_dir) / run_id)
            if rec:
                hist[f"{method}"] = rec.get("history", [])
        return plots.plot_losses(hist, dest)

    fns = {**plots.PLOTS, "losses": losses}
    for kind in kinds:
        if kind not in fns:
            raise ValueError(f"unknown plot '{kind}'; known: {', '.join(fns)}")
    for kind in kinds:
        print(f"wrote {fns[kind](df, out / f'{kind}.png')}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """The default suite (the README's main job)."""
    from hdfm_bench.experiments.suite import run_suite

    results = args.results or ("results/suite" if args.backend == "torch" else f"results/suite-{args.backend}")
    summary = run_suite(quick=args.quick, results=results, out_dir=args.out_dir, methods=args.method,
                        backend=args.backend, compile=args.compile, termination=TERMINATION)
    for name, m in summary["methods"].items():
        print(f"{name:<20} loss {m['final_loss']:.4f}  train {m['train_s']:>6.1f} s  sample+evaluate "
              f"{m['sample_s']:>5.1f} s  NFE {m['protocol']['nfe']:>4}  -> {m['grid']}")
    print(f"suite: training {summary['train_total_s']:.0f} s in all (recorded per run); this invocation "
          f"{summary['invocation_wall_s']:.0f} s; peak memory {summary['peak_rss_mb']:.0f} MB")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    """Expand a sweep spec and submit what is not finished (train + evaluate, one job per run)."""
    from hdfm_bench.sweeps import api as sw

    sweep = sw.Sweep.load(args.spec, overrides=args.set or [], resources=args.slurm or [],
                          eval_overrides=args.eval or [], eval_only=True if args.eval_only else None,
                          check_data=args.check_data or not args.dry_run)
    if args.dry_run:
        print(sw.dry_run(sweep, args.executor))
        return 0
    if args.executor == "slurm":  # before the plan is printed: nothing is submitted without the client
        from hdfm_bench.sweeps.submitit_adapter import require_slurm_client

        require_slurm_client()
    todo, by_state = sw.plan(sweep, args.retry_failed)
    counts = ", ".join(f"{len(v)} {k}" for k, v in by_state.items() if v)
    print(f"sweep '{sweep.name}': {len(sweep.runs)} run(s) ({counts}); submitting {len(todo)} via executor "
          f"'{args.executor}'" + ("" if by_state["failed"] == [] or args.retry_failed
                                  else "; failed runs need --retry-failed"))
    if args.executor in ("debug", "local"):  # training first, then the shard jobs of what it trained
        jobs = sw.run_until_done(sweep, args.executor, args.retry_failed, timeout_s=args.timeout,
                                 parallel=args.parallel)
    else:
        jobs = sw.submit(sweep, args.executor, args.retry_failed)
        if jobs and args.wait:
            sw.wait(jobs, args.timeout or 60.0 * sweep.resources["time"] * max(1, len(jobs)) + 60)
    if jobs and args.executor != "debug":
        print(f"submitted job(s) {', '.join(str(j.job_id) for j in jobs)}; logs under {sweep.folder / 'jobs'}")
    if args.executor == "debug" or args.wait or args.executor == "local":
        return _print_status(sweep, json_out=False)
    return 0


def _print_status(sweep, json_out: bool) -> int:
    from tabulate import tabulate

    from hdfm_bench.sweeps.state import status

    rows = status(sweep)
    if json_out:
        print(json.dumps(rows, indent=2))
    else:
        print(tabulate([[r["run_id"], r["label"], r["state"], f"{r['step']}/{r['steps']}", r["evals"], r["job_id"],
                         r["detail"][:90]] for r in rows],
                       headers=["run_id", "label", "state", "step", "evals", "job", "detail"], tablefmt="github"))
        for r in rows:
            if r["state"] in ("failed", "interrupted") and r["log"]:
                print(f"{r['label']}: {r['state']}: {r['detail']} (log: {r['log']})")
    return 1 if any(r["state"] == "failed" for r in rows) else 0


def cmd_status(args: argparse.Namespace) -> int:
    from hdfm_bench.sweeps.spec import Sweep

    return _print_status(Sweep.load(args.spec, overrides=args.set or [], eval_overrides=args.eval or [],
                                    check=False), args.json)


def cmd_reproduce(args: argparse.Namespace) -> int:
    """Paper reproductions (results under results/<what>/)."""
    if args.what == "toy":
        from hdfm_bench.experiments.toy import reproduce_toy

        summary = reproduce_toy(quick=args.quick, out=args.out or "results/toy", dist=args.dist)
        print(f"wrote {summary['table']} and {', '.join(summary['figures'].values())}")
    elif args.what == "ablation":
        from hdfm_bench.experiments.ablation import reproduce_ablation

        summary = reproduce_ablation(quick=args.quick, out=args.out or "results/ablation", executor=args.executor,
                                     spec=args.spec, sets=args.set or [], eval_sets=args.eval or [],
                                     best=args.best, select_seeds=args.select_seeds, report_seeds=args.report_seeds)
        print(f"wrote {summary['table']} and {summary['figure']}")
    elif args.what == "headtohead":
        from hdfm_bench.experiments.headtohead import reproduce_headtohead

        summary = reproduce_headtohead(quick=args.quick, out=args.out or "results/headtohead", executor=args.executor,
                                       spec=args.spec, sets=args.set or [], inception_n=args.inception_n)
        print(f"wrote {summary['table']} and {summary['figure']}")
    elif args.what == "stability":
        from hdfm_bench.experiments.stability import reproduce_stability

        summary = reproduce_stability(quick=args.quick, out=args.out or "results/stability", executor=args.executor,
                                      spec=args.spec, sets=args.set or [])
        print(f"wrote {summary['table']} and {summary['figure']}")
    else:
        from hdfm_bench.experiments.spectral import reproduce_spectral

        summary = reproduce_spectral(quick=args.quick, out=args.out or "results/spectral", executor=args.executor,
                                     sets=args.set or [], spec=args.spec)
        print(f"wrote {summary['table']} and {', '.join(summary['figures'])}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hdfm-bench",
        description="Head-to-head benchmark of corruption processes for image generative models "
                    "(noise FM / JiT, HDFM, IHDM, Blurring Diffusion, cold diffusion). "
                    "Convention: t = 0 source, t = 1 data; images in [-1, 1].")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("list", help="print the registry: paths (parameters, defaults), targets, samplers",
                       description="Print every registered path with its parameters and defaults, "
                                   "the prediction targets and the samplers (with the paths they run on).")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("gallery", help="write results/paths.png: real images corrupted by every path",
                       description="Corrupt a scikit-learn digit and colour photo with every path "
                                   "(default parameters) at several t and write one PNG.")
    p.add_argument("--out", default="results/paths.png", help="output PNG (default: %(default)s)")
    p.add_argument("--times", type=_times, default=[0.0, 0.25, 0.5, 0.75, 1.0],
                   help="comma-separated t values in [0, 1] (default: 0,0.25,0.5,0.75,1)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default: %(default)s)")
    p.set_defaults(func=cmd_gallery)

    p = sub.add_parser("perf", help="run the benchmarks and update results/perf.md",
                       description="Side-by-side speed benchmarks; each writes its own section of "
                                   "the output Markdown file (medians, ratios, the machine).")
    p.add_argument("--only", action="append", metavar="NAME",
                   help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}: "
                        "spectral (blur operator vs FFT DCT), metrics (FID/KID/PR on 10k), inception (standard FID "
                        "extractor images/s), memory (streaming evaluation at n = 2,000 vs 20,000), toy (JAX vmapped "
                        "vs torch), overhead (path + loss per training step), sampler (per NFE), suite (the default "
                        "suite's wall time and memory), gpu (ViT-B images/s; needs CUDA). Default: all")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed calls per measurement (default: each benchmark's own: "
                        + ", ".join(f"{k} {v}" for k, v in DEFAULT_REPEATS.items()) + ")")
    p.add_argument("--out", default="results/perf.md", help="Markdown file to update (default: %(default)s)")
    p.set_defaults(func=cmd_perf)

    _add_train_parser(sub)

    p = sub.add_parser("sample", help="sample from a trained run: sampler, steps, CFG, EMA -> PNG grid",
                       description="Draw class-balanced samples from a run's checkpoint and write a PNG "
                                   "grid, the uint8 samples (.pt) and the protocol (.json).")
    p.add_argument("run", help="run directory (holds checkpoint.pt)")
    _add_sampling_args(p, n_default=100)
    p.add_argument("--out", default=None, help="output stem: STEM.png, STEM.pt, STEM.json; a folder (existing, or "
                                               "ending in /) gets the default name inside it (default: "
                                               "RUN/samples/<sampler>-<steps>-cfg-ema-seed)")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("evaluate", help="sample a run and store FID/KID/PR + spectral ratios, protocol-stamped",
                       description="Sample n images from a run, measure FID, KID, precision/recall (and "
                                   "class accuracy) through torch-fidelity and the spectral ratios, and "
                                   "append protocol-stamped rows to the results store.")
    p.add_argument("run", help="run directory (holds checkpoint.pt)")
    p.add_argument("--method", default=None, help="row label (default: the path name)")
    _add_sampling_args(p, n_default=500)
    p.add_argument("--extractor", default=None,
                   help="feature extractor: domain-mnist, domain-digits, inception-offline (standard FID), "
                        "inception (default: the task's protocol)")
    p.add_argument("--reference-split", default=None, help="reference split (default: the task's protocol)")
    p.add_argument("--reference", default=None, metavar="FILE.npz",
                   help="reference statistics (mu, sigma: pytorch-fid / EDM / ADM format, or `hdfm-bench reference`) "
                        "instead of a split; FID only unless the file holds the features")
    p.add_argument("--metrics", nargs="+", default=list(FEATURE_METRICS), choices=FEATURE_METRICS,
                   help="feature metrics (default: %(default)s); FID alone keeps only its running statistics")
    p.add_argument("--shards", type=int, default=1,
                   help="split the n images into this many shards, each written to a shard file as it finishes "
                        "(an interrupted evaluation resumes at the missing shards; default: %(default)s)")
    p.add_argument("--shard", type=int, default=None,
                   help="measure only this shard (0-based) into its shard file; run once more without --shard "
                        "to merge")
    p.add_argument("--shard-dir", default=None, help="where shard files go (default: RUN/eval-shards)")
    p.add_argument("--store", default="results/results.jsonl", help="results store (default: %(default)s)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("reference", help="reference statistics (mu, sigma[, features]) of a task split or a folder",
                       description="Extract features of a task split or an image folder with an extractor and "
                                   "write mu, sigma (and, with --features, the features) as an .npz in the format "
                                   "pytorch-fid, EDM and ADM-style evaluations read, with the extractor, its "
                                   "weights hash and the resolution; use it with `evaluate --reference`.")
    p.add_argument("source", help="TASK (e.g. mnist, with --split) or a folder of images")
    p.add_argument("--out", required=True, help="the .npz to write")
    p.add_argument("--split", default="test", help="task split (default: %(default)s)")
    p.add_argument("--extractor", default="inception-offline", help="(default: %(default)s)")
    p.add_argument("--features", action="store_true", help="also store the features (KID, precision/recall)")
    p.add_argument("--batch-size", type=int, default=100, help="images per extractor call (default: %(default)s)")
    p.set_defaults(func=cmd_reference)

    p = sub.add_parser("prepare", help="convert an image folder into a dataset zip (PNGs + dataset.json labels)",
                       description="Decode every image of a split of an image folder (ImageNet / AFHQ / FFHQ "
                                   "layout), centre-crop and resize it exactly as the imagefolder task does, and "
                                   "write an EDM-style zip (one PNG per image, labels from the class folders in "
                                   "dataset.json) that the imagezip task streams; parallel workers, atomic "
                                   "output. Streaming the folder or the zip gives identical batches.")
    p.add_argument("source", help="the image folder (class subfolders, optionally under train/ and val/)")
    p.add_argument("dest", help="the .zip to write (replaced only when complete)")
    p.add_argument("--resolution", type=int, default=64, help="side of the square images (default: %(default)s)")
    p.add_argument("--split", default="train", help="which split of the folder (default: %(default)s)")
    p.add_argument("--workers", type=int, default=None, help="decoding processes (default: the CPUs, at most 8)")
    p.add_argument("--on-error", default="fail", metavar="fail|skip",
                   help="an unreadable image: fail (write nothing) or skip it, naming it (default: %(default)s)")
    p.add_argument("--reference-stats", metavar="OUT.npz", default=None,
                   help="also write the reference statistics of the prepared images (see `reference`)")
    p.add_argument("--extractor", default="inception-offline", help="for --reference-stats (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=100, help="for --reference-stats: images per extractor call "
                                                               "(default: %(default)s)")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("train-extractor", help="train a domain classifier (FID extractor of a small task) → .pt",
                       description="Train the domain classifier of a task with its fixed recipe and write its "
                                   "weights and a JSON (recipe, test accuracy, SHA-256). The package ships the "
                                   "trained files and uses them as they are (pinned by SHA-256), so every machine "
                                   "measures with the same instrument; this command makes such a file for a new "
                                   "task or a new recipe. Two trainings need not give the same bytes.")
    p.add_argument("task", nargs="?", default="mnist", help="mnist or digits (default: %(default)s)")
    p.add_argument("--out", default=None, help="the .pt to write (default: domain-TASK.pt here)")
    p.set_defaults(func=cmd_train_extractor)

    p = sub.add_parser("table", help="paper-style table from the results store (markdown, latex, csv)",
                       description="Mean ± std over seeds per method and metric, best in bold; refuses "
                                   "columns mixing measurement protocols and cells averaging anything but seeds "
                                   "(naming the field); flags budgets that differ (†).")
    p.add_argument("spec", nargs="?", default=None, help="a sweep spec: tabulate that sweep's rows (else --store)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="with a spec: the [base] overrides it ran with")
    p.add_argument("--store", default="results/results.jsonl", help="results store (default: %(default)s)")
    p.add_argument("--format", default=TABLE_FORMATS[0], choices=TABLE_FORMATS, help="(default: %(default)s)")
    p.add_argument("--metric", action="append", help="column (repeatable; default: fid kid precision recall "
                                                      "class_accuracy r_hf lsd, those present)")
    p.add_argument("--allow-mixed", action="store_true", help="tabulate columns whose protocols differ anyway")
    p.add_argument("--split", action="store_true",
                   help="rows of one method measured with different settings (sampler, steps, CFG, EMA, checkpoint, "
                        "n) become separate rows labelled by what differs (default: refused; only seeds are averaged)")
    p.add_argument("--best", default=None, metavar="AXES",
                   help="report each row at its best setting over these protocol fields, e.g. cfg_scale,ema,steps: "
                        "chosen on --select-seeds, reported on --report-seeds (disjoint sampling seeds)")
    p.add_argument("--select-seeds", default="0", help="with --best: sampling seeds the choice is made on (default: 0)")
    p.add_argument("--report-seeds", default="1", help="with --best: sampling seeds reported (default: 1)")
    p.add_argument("--select-metric", default="fid", help="with --best: the metric chosen on (default: fid)")
    p.add_argument("--out", default=None, help="also write the table to this file")
    p.set_defaults(func=cmd_table)

    p = sub.add_parser("plot", help="seaborn figures from the results store",
                       description="FID versus counted NFE, per-band spectral ratios, the spectral ratio "
                                   "along sampling.")
    p.add_argument("--store", default="results/results.jsonl", help="results store (default: %(default)s)")
    p.add_argument("--out-dir", default="results/plots", help="(default: %(default)s)")
    p.add_argument("--kind", action="append", choices=PLOT_KINDS, help=f"{' | '.join(PLOT_KINDS)} (default: all)")
    p.add_argument("--runs-dir", default="runs", help="run directories, for loss curves (default: %(default)s)")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("sweep", help="run a sweep spec (TOML grid) as jobs: local, Slurm (job array) or debug",
                       description="Expand the spec into runs (one per config hash), skip finished ones, "
                                   "resume unfinished ones, and submit one job per run that trains and "
                                   "evaluates every [eval] setting not yet in the sweep's store. Jobs "
                                   "checkpoint and requeue on Slurm's preemption / time-limit signal.")
    p.add_argument("spec", nargs="?", default=str(DEFAULT_SPEC),
                   help=f"sweep spec: a TOML file or a shipped spec's name ({', '.join(shipped())}); "
                        "default: the shipped digits-mini")
    p.add_argument("--executor", required=True, choices=EXECUTORS,
                   help="where jobs run (always explicit): local subprocesses, a Slurm job array, "
                        "or in this process (debug)")
    p.add_argument("--dry-run", action="store_true", help="validate, print every run and the job array's "
                                                          "resources; submit nothing")
    p.add_argument("--check-data", action="store_true", help="with --dry-run: also open the data and reference "
                                                             "files the spec names (run it where they live)")
    p.add_argument("--retry-failed", action="store_true", help="also resubmit runs whose job failed")
    p.add_argument("--eval-only", action="store_true", help="evaluate existing checkpoints, train nothing")
    p.add_argument("--wait", action="store_true", help="slurm: wait for the jobs (local and debug always wait)")
    p.add_argument("--parallel", type=_positive_int, default=None,
                   help="local executor: jobs at once (default: the cores // cpus_per_task); the cores are shared "
                        "among them")
    p.add_argument("--timeout", type=float, default=None, help="seconds to wait at most (default: from the "
                                                               "time limit)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a [base] field (repeatable)")
    p.add_argument("--eval", action="append", metavar="KEY=VALUE",
                   help="override an [eval] field, e.g. reference=ref.npz or n=10000 (repeatable)")
    p.add_argument("--slurm", action="append", metavar="KEY=VALUE",
                   help="override a [slurm] resource under submitit's name, e.g. partition=gpu (repeatable)")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("status", help="per-run state of a sweep: pending / running / done / failed / interrupted",
                       description="From the sweep's store (evaluations done), run records (training "
                                   "progress) and submitit (job state, error, log path). Exit 1 if any "
                                   "run failed.")
    p.add_argument("spec", nargs="?", default=str(DEFAULT_SPEC),
                   help=f"sweep spec: a TOML file or a shipped spec's name ({', '.join(shipped())}); "
                        "default: the shipped digits-mini")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="the [base] overrides the sweep ran with")
    p.add_argument("--eval", action="append", metavar="KEY=VALUE", help="the [eval] overrides the sweep ran with")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("reproduce", help="paper reproductions: toy (JAX), ablation, spectral (HDFM Fig. 5)",
                       description="toy: JiT §3.7 / HDFM Fig. 3-4 — 2-D data buried in D in {2, 8, 16, 64, 512} dims; "
                                   "x/eps/v-prediction (v-loss) under noise_fm and hdfm, 3 seeds, one vmapped JAX "
                                   "program per (path, D); sliced Wasserstein + MMD table, scatter and trajectory "
                                   "figures. ablation: HDFM's ablation (blur on/off x x/v/eps-prediction + BDM, "
                                   "IHDM, cold blur, HDFM code) on MNIST, 3 seeds, sampler budgets 10/20/50 "
                                   "(bench/specs/ablation-mnist.toml). spectral: HDFM Fig. 5 — R_hf along sampling "
                                   "for full noise, HDFM, pure blur and HDFM with blur attenuated by r; exact vs "
                                   "adaptive beta. Outputs under results/<what>/ (--quick: <out>/quick).")
    p.add_argument("what", nargs="?", default=REPRODUCTIONS[0], choices=REPRODUCTIONS,
                   help="which reproduction (default: toy)")
    p.add_argument("--quick", action="store_true", help="a small budget for a first look (about a minute)")
    p.add_argument("--out", default=None, help="output folder (default: results/<what>; --quick: <out>/quick)")
    p.add_argument("--dist", default="spiral",
                   help="toy: the 2-D distribution of the toy task (spiral, eight_gaussians, two_moons; "
                        "default: %(default)s)")
    p.add_argument("--executor", default="debug", choices=EXECUTORS,
                   help="ablation/spectral: where the runs train (debug = in this process, one by one; "
                        "default: %(default)s)")
    p.add_argument("--spec", default=None, help="ablation/spectral: another sweep spec (default: the shipped "
                        f"ablation-mnist.toml / spectral-mnist.toml in {SPECS_DIR})")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="ablation/spectral/headtohead: override a [base] field of the spec, e.g. task=cifar10")
    p.add_argument("--eval", action="append", metavar="KEY=VALUE",
                   help="ablation: override an [eval] field, e.g. 'cfg_scale=[1, 2, 3]' or 'seed=[0, 1]'")
    p.add_argument("--best", default=None, metavar="AXES",
                   help="ablation: each row at its best setting over these protocol fields (e.g. cfg_scale,ema), "
                        "chosen per budget on --select-seeds and reported on --report-seeds")
    p.add_argument("--select-seeds", default="0", help="with --best: sampling seeds the choice is made on (default: 0)")
    p.add_argument("--report-seeds", default="1", help="with --best: sampling seeds reported (default: 1)")
    p.add_argument("--inception-n", type=int, default=0, metavar="N",
                   help="headtohead: also the Inception FID of each row's chosen setting on N images (default: off)")
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser("run", help="the default suite: train + sample 4 methods on MNIST (README's main job)",
                       description="Train noise_fm (x-pred, v-loss), hdfm (x-pred), blurring_diffusion "
                                   "(x-pred, x-loss) and ihdm with one ViT and one budget on MNIST, sample each "
                                   "class-conditionally and write a grid per method. Re-running resumes.")
    p.add_argument("--quick", action="store_true", help="a small budget for a first look (< 3 min)")
    p.add_argument("--method", action="append", help="only this method (repeatable)")
    p.add_argument("--results", default=None,
                   help="where grids and tables go (default: results/suite, or results/suite-jax with --backend jax)")
    p.add_argument("--out-dir", default="runs", help="where runs/checkpoints go (default: %(default)s)")
    p.add_argument("--backend", default=BACKENDS[0], choices=BACKENDS,
                   help="training framework (default: %(default)s; jax = the equinox twins, other run ids)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="train and sample the backbone under torch.compile (the same numbers to float rounding; "
                        "default: on when a C compiler is available)")
    p.set_defaults(func=cmd_run)
    for p in sub.choices.values():
        p.add_argument("--threads", type=_positive_int, default=None,
                       help=f"CPU threads for this process (default: ${THREADS_ENV}, else the CPUs Slurm gave the "
                            "job, else every core this process may use)")
    return parser


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{text}'")
    return n


def _ema(text: str) -> float | None:
    """``--ema``: a decay the run keeps, or ``none`` for the raw weights."""
    if text.strip().lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a decay such as 0.999 or 'none', got '{text}'") from None


def _add_sampling_args(p: argparse.ArgumentParser, n_default: int) -> None:
    """The sampling protocol options shared by ``sample`` and ``evaluate`` (``SamplingSettings``)."""
    d = SamplingSettings()
    p.add_argument("--sampler", default=d.sampler,
                   help="sampler name (default: the method's recipe, its sampler at its own budget; see `list`)")
    p.add_argument("--steps", type=int, default=d.steps, help="sampler steps (default: the recipe's, or the sampler's)")
    p.add_argument("--sampler-param", action="append", metavar="KEY=VALUE", help="extra sampler parameter")
    p.add_argument("--cfg-scale", type=float, default=d.cfg_scale,
                   help="classifier-free guidance scale (default: %(default)s)")
    p.add_argument("--cfg-interval", type=float, nargs=2, default=DEFAULT_CFG_INTERVAL, metavar=("LOW", "HIGH"),
                   help=f"guide only where LOW < t < HIGH (default: {DEFAULT_CFG_INTERVAL[0]:g} "
                        f"{DEFAULT_CFG_INTERVAL[1]:g}, JiT)")
    p.add_argument("--ema", type=_ema, default=d.ema,
                   help="EMA decay to sample with, or 'none' for raw weights (default: none)")
    p.add_argument("--checkpoint-step", type=int, default=None, metavar="STEP",
                   help="sample from the checkpoint of this training step (kept with keep_every; default: the latest)")
    p.add_argument("-n", type=int, default=n_default, help="number of samples (default: %(default)s)")
    p.add_argument("--seed", type=int, action="append", default=None,
                   help=f"sampling seed: image i draws from (seed, i) alone (default: {d.seed}; evaluate: repeat for "
                        "several disjoint image-seed ranges)")
    p.add_argument("--batch-size", type=int, default=None,
                   help=f"images per sampler call (default: {DEFAULT_BATCH_SIZE}; the images do not depend on it)")
    p.add_argument("--save-samples", default=None, metavar="DEST",
                   help="also write the images for other evaluators: DEST.npz (arr_0 uint8 NHWC, as ADM reads), "
                        "DEST.zip or a folder of PNGs (clean-fid, torch-fidelity, EDM)")
    p.add_argument("--compile", action="store_true",
                   help="sample with the backbone under torch.compile (fused kernels; needs a C compiler on a CPU)")


def _sampling_fields(args: argparse.Namespace) -> dict:
    """The SamplingSettings fields given on the command line."""
    try:
        params = parse_assignments(args.sampler_param, "--sampler-param")
    except OverrideError as err:
        raise ConfigError(str(err)) from None
    return {"sampler": args.sampler, "steps": args.steps, "cfg_scale": args.cfg_scale,
            "cfg_interval": tuple(args.cfg_interval), "ema": args.ema, "n": args.n,
            "seed": args.seed or [SamplingSettings().seed], "sampler_params": params, "batch_size": args.batch_size,
            "compile": args.compile, "checkpoint_step": args.checkpoint_step}


def _add_train_parser(sub) -> None:
    p = sub.add_parser("train", help="train one run from a TOML config with command-line overrides",
                       description="Train (or resume) one run. Values come from the defaults below, then "
                                   "the TOML file, then these options / --set KEY=VALUE. Running the same "
                                   "command again resumes from the last checkpoint.")
    p.add_argument("config", nargs="?", default=None, help="TOML run config (keys as the options below)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override any key (a.b=v for params)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    for f in RunConfig.fields():
        flag = "--" + f.name.replace("_", "-")
        doc = DOCS.get(f.name, "")
        if f.name.endswith("_params"):
            p.add_argument(flag, action="append", metavar="KEY=VALUE", default=None,
                           help=f"{doc}; repeatable (default: none)")
        elif f.name == "ema_decays":
            p.add_argument(flag, type=float, nargs="+", default=None, help=f"{doc} (default: {list(f.default)})")
        elif isinstance(f.default, bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None,
                           help=f"{doc} (default: {f.default})")
        else:
            p.add_argument(flag, type=type(f.default), default=None, help=f"{doc} (default: {f.default!r})")
    p.set_defaults(func=cmd_train)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    TERMINATION.requested = False
    TERMINATION.install()
    try:
        if args.func not in (cmd_list, cmd_status):  # the light commands never load torch
            set_threads(args.threads)
        return args.func(args)
    except KeyboardInterrupt:
        print("hdfm-bench: interrupted (checkpoints kept; run the same command again to resume)", file=sys.stderr)
        return 130
    except Terminated:
        print("hdfm-bench: terminated (SIGTERM); finished results and checkpoints are kept; run the same command "
              "again to resume", file=sys.stderr)
        return EXIT_TERMINATED
    except Preempted as err:  # SIGTERM during training: the trainer checkpointed the step it finished
        print(f"hdfm-bench: terminated (SIGTERM) after step {err.step}: checkpoint written; run the same command "
              "again to resume", file=sys.stderr)
        return EXIT_TERMINATED
    except (ConfigError, ValueError, OSError, RuntimeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"hdfm-bench: error: {first}", file=sys.stderr)
        return 2
    finally:
        TERMINATION.uninstall()


if __name__ == "__main__":
    sys.exit(main())
