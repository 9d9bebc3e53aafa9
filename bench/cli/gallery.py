"""``hdfm-bench gallery``: write results/paths.png: real images corrupted by every path

Corrupt a scikit-learn digit and colour photo with every path (default parameters) at several t and write one
PNG.
"""
from __future__ import annotations

import argparse

from .options import _times, command_help


def add_parser(sub) -> None:
    p = sub.add_parser("gallery", **command_help(__doc__))
    p.add_argument("--out", default="results/paths.png", help="output PNG (default: %(default)s)")
    p.add_argument("--times", type=_times, default=[0.0, 0.25, 0.5, 0.75, 1.0],
                   help="comma-separated t values in [0, 1] (default: 0,0.25,0.5,0.75,1)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default: %(default)s)")
    p.set_defaults(func=cmd_gallery)


def cmd_gallery(args: argparse.Namespace) -> int:
    from hdfm_bench.experiments.gallery import make_gallery

    out = make_gallery(args.out, times=args.times, seed=args.seed)
    print(f"wrote {out}")
    return 0
