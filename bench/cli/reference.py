"""``hdfm-bench reference``: reference statistics (mu, sigma[, features]) of a task split or a folder

Extract features of a task split or an image folder with an extractor and write mu, sigma (and, with
--features, the features) as an .npz in the format pytorch-fid, EDM and ADM-style evaluations read, with the
extractor, its weights hash and the resolution; use it with `evaluate --reference`.
"""
from __future__ import annotations

import argparse

from .options import command_help


def add_parser(sub) -> None:
    p = sub.add_parser("reference", **command_help(__doc__))
    p.add_argument("source", help="TASK (e.g. mnist, with --split) or a folder of images")
    p.add_argument("--out", required=True, help="the .npz to write")
    p.add_argument("--split", default="test", help="task split (default: %(default)s)")
    p.add_argument("--extractor", default="inception-offline", help="(default: %(default)s)")
    p.add_argument("--features", action="store_true", help="also store the features (KID, precision/recall)")
    p.add_argument("--batch-size", type=int, default=100, help="images per extractor call (default: %(default)s)")
    p.set_defaults(func=cmd_reference)


def cmd_reference(args: argparse.Namespace) -> int:
    """Reference statistics (mu, sigma; optionally the features) of a task split or an image folder."""
    from hdfm_bench.evaluation.reference_stats import reference_statistics

    out = reference_statistics(args.source, args.out, split=args.split, extractor=args.extractor,
                               with_features=args.features, batch_size=args.batch_size, progress=True)
    print(f"wrote {out['path']}: {out['n']} images, {out['dim']}-d {out['extractor']} ({out['extractor_hash']}) "
          f"statistics{' and features' if args.features else ''}; sha256 {out['sha256']}")
    return 0
