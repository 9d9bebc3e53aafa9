"""``hdfm-bench score``: measure images from any model under this project's protocol

Score a folder of PNG/JPEG images, an EDM-style zip or an ADM-style .npz (arr_0 uint8 NHWC, optional arr_1
labels) written by any model: FID, KID, precision/recall (class accuracy when the images carry labels) and
the spectral ratios, exactly as `evaluate` measures a run, against a task split or a statistics file. The
rows are appended to the results store under --name, stamped with the images' pixel hash, n, resolution and
the extractor, so `hdfm-bench table` puts them next to trained rows (and refuses to mix protocols).
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

from hdfm_bench.core.io import check_output_folder
from hdfm_bench.core.overrides import OverrideError, parse_assignments
from hdfm_bench.evaluation.protocol import TABLE_METRICS
from hdfm_bench.methods import ConfigError

from .options import _positive_int, add_measurement_args, command_help


def add_parser(sub) -> None:
    p = sub.add_parser("score", **command_help(__doc__))
    p.add_argument("images", help="a folder of images, a .zip of images (EDM dataset.json labels optional) or an "
                                  ".npz (arr_0 uint8 N×H×W×C; labels in arr_1 or labels)")
    p.add_argument("--name", default=None, help="row label in tables (default: the file or folder name)")
    p.add_argument("--task", default="mnist", help="the data the images are compared with (default: %(default)s)")
    p.add_argument("--task-params", action="append", metavar="KEY=VALUE", default=None,
                   help="a parameter of the task (e.g. root=data.zip for imagezip)")
    add_measurement_args(p)
    p.add_argument("--kid-subset-size", type=_positive_int, default=None,
                   help="KID subset size (default: min(1000, n), as evaluate)")
    p.add_argument("--batch-size", type=_positive_int, default=256,
                   help="images decoded and measured at once (default: %(default)s; memory stays flat in n)")
    p.add_argument("--shards", type=_positive_int, default=1,
                   help="split the images into this many ranges, each measured into a shard file as it finishes "
                        "(an interrupted scoring resumes at the missing shards; default: %(default)s)")
    p.add_argument("--shard", type=int, default=None,
                   help="measure only this shard (0-based) into its file (one array task); run once more without "
                        "--shard to merge")
    p.add_argument("--shard-dir", default=None, help="where shard files go (default: score-shards beside the store)")
    p.add_argument("--store", default="results/results.jsonl", help="results store (default: %(default)s)")
    p.set_defaults(func=cmd_score)


def cmd_score(args: argparse.Namespace) -> int:
    from hdfm_bench.core.limits import check_batch
    from hdfm_bench.evaluation.score import Scoring
    from hdfm_bench.evaluation.store import ResultStore

    store = ResultStore(args.store)
    store.check_writable()  # before any work
    try:
        params = parse_assignments(args.task_params, "--task-params")
    except OverrideError as err:
        raise ConfigError(str(err)) from None
    scoring = Scoring(args.images, task=args.task, task_params=params, extractor=args.extractor,
                      reference_split=args.reference_split, reference=args.reference, metrics=tuple(args.metrics),
                      kid_subset_size=args.kid_subset_size)
    check_batch(args.batch_size, math.prod(scoring.images.shape), "--batch-size")
    folder = Path(args.shard_dir) if args.shard_dir else Path(args.store).parent / "score-shards"
    if args.shard is not None:
        scoring.shard_range(args.shard, args.shards)  # refused before any work
        check_output_folder(folder, "--shard-dir")
        dest = scoring.measure_shard(folder, args.shard, args.shards, batch_size=args.batch_size, progress=True)
        print(f"wrote {dest}")
        return 0
    if args.shards == 1:
        rows = scoring.rows(name=args.name, batch_size=args.batch_size, progress=True)
    else:
        scoring.shard_range(args.shards - 1, args.shards)
        check_output_folder(folder, "--shard-dir")
        for k in range(args.shards):
            scoring.measure_shard(folder, k, args.shards, batch_size=args.batch_size, progress=True)
        rows = scoring.rows(name=args.name, parts=scoring.merge_shards(folder, args.shards))
    store.append(rows)
    p = rows[0]["protocol"]
    shown = {r["metric"]: r["value"] for r in rows if r["metric"] in TABLE_METRICS}
    print(", ".join(f"{k} {v:.4g}" for k, v in shown.items()))
    print(f"protocol: {p['extractor']} ({p['extractor_hash']}), n {p['n_gen']} {p['images']['format']} images "
          f"(sha256 {p['images']['sha256'][:16]}) vs {p['n_ref']} {p['reference_split']} -> {len(rows)} rows as "
          f"'{rows[0]['method']}' in {args.store}")
    return 0
