"""``hdfm-bench evaluate``: sample a run and store FID/KID/PR + spectral ratios, protocol-stamped

Sample n images from a run, measure FID, KID, precision/recall (and class accuracy) through torch-fidelity and
the spectral ratios, and append protocol-stamped rows to the results store.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from hdfm_bench.core.io import check_output_folder

from .options import _add_sampling_args, _sampling_fields, add_measurement_args, command_help


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", **command_help(__doc__))
    p.add_argument("run", help="run directory (holds checkpoint.pt)")
    p.add_argument("--method", default=None, help="row label (default: the path name)")
    _add_sampling_args(p, n_default=500)
    add_measurement_args(p)
    p.add_argument("--shards", type=int, default=1,
                   help="split the n images into this many shards, each written to a shard file as it finishes "
                        "(an interrupted evaluation resumes at the missing shards; default: %(default)s)")
    p.add_argument("--shard", type=int, default=None,
                   help="measure only this shard (0-based) into its shard file; run once more without --shard "
                        "to merge")
    p.add_argument("--shard-dir", default=None, help="where shard files go (default: RUN/eval-shards)")
    p.add_argument("--store", default="results/results.jsonl", help="results store (default: %(default)s)")
    p.set_defaults(func=cmd_evaluate)


def _report(rows: list[dict], args: argparse.Namespace) -> None:
    """The headline metrics of one evaluation and its protocol, in two lines."""
    from hdfm_bench.evaluation.protocol import TABLE_METRICS

    p = rows[0]["protocol"]
    shown = {r["metric"]: r["value"] for r in rows if r["metric"] in TABLE_METRICS}
    print(", ".join(f"{k} {v:.4g}" for k, v in shown.items()))
    print(f"protocol: {p['extractor']} ({p['extractor_hash']}), n {p['n_gen']} (image seeds {p['image_seeds']}, "
          f"{p['shards']} shard(s)) vs {p['n_ref']} {p['reference_split']}, {p['sampler']} {p['steps']} steps / "
          f"{p['nfe']} NFE, CFG {p['cfg_scale']:g}, EMA {p['ema']}, seed {p['seed']} -> {len(rows)} rows in "
          f"{args.store}" + (f"; samples in {args.save_samples}" if args.save_samples else ""))


def _evaluate_by_rank(args: argparse.Namespace, settings, folder: Path, store, rank: int, world: int) -> None:
    """Under torchrun: rank r measures shards r, r + W, ...; after a barrier rank 0 merges them into rows."""
    from hdfm_bench.evaluation.evaluate import Evaluation, evaluate_shard, merge_shards
    from hdfm_bench.training.distributed import barrier

    ev = Evaluation(args.run, settings)
    for k in range(rank, args.shards, world):
        evaluate_shard(ev, k, folder, progress=rank == 0)
    barrier()  # every shard written before rank 0 merges them
    if rank == 0:
        rows, _ = merge_shards(args.run, settings, folder, method=args.method)
        store.append(rows)
        _report(rows, args)


def cmd_evaluate(args: argparse.Namespace) -> int:
    if args.shard_dir:
        check_output_folder(args.shard_dir, "--shard-dir")
    from hdfm_bench.evaluation.evaluate import SHARDS_DIR, Evaluation, evaluate_run, evaluate_shard
    from hdfm_bench.evaluation.protocol import EvalSettings
    from hdfm_bench.evaluation.store import ResultStore

    store = ResultStore(args.store)
    store.check_writable()  # before any work: a bad --store must not cost an evaluation
    fields = _sampling_fields(args)
    seeds = fields.pop("seed")
    all_settings = [EvalSettings(**fields, seed=seed, extractor=args.extractor, reference_split=args.reference_split,
                                 reference=args.reference, metrics=tuple(args.metrics), shards=args.shards)
                    for seed in seeds]  # all validated before the first evaluation
    from hdfm_bench.training.distributed import end_group, start_torchrun

    rank, world = start_torchrun()  # under torchrun each rank measures its share of the shards
    if world > 1 and (args.shard is not None or args.save_samples or args.shards % world):
        raise ValueError(f"under torchrun ({world} processes) --shards must be a multiple of {world}, without "
                         "--shard or --save-samples")
    folder = Path(args.shard_dir) if args.shard_dir else Path(args.run) / SHARDS_DIR
    for settings in all_settings:  # the seed ritual: several disjoint image-seed ranges, one evaluation each
        if world > 1:
            _evaluate_by_rank(args, settings, folder, store, rank, world)
        elif args.shard is not None:  # one shard only (e.g. one array task); merged when all exist
            print(f"wrote {evaluate_shard(Evaluation(args.run, settings), args.shard, folder, progress=True)}")
        else:
            rows, _ = evaluate_run(args.run, settings, method=args.method, progress=True,
                                   save_samples=args.save_samples, shard_dir=args.shard_dir)
            store.append(rows)
            _report(rows, args)
    end_group()
    return 0
