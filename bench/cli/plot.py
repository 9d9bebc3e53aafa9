"""``hdfm-bench plot``: seaborn figures from the results store

FID versus counted NFE, per-band spectral ratios, the spectral ratio along sampling.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from hdfm_bench.evaluation.plots import PLOTS

from .options import _read_store, command_help

PLOT_KINDS = [*PLOTS, "losses"]


def add_parser(sub) -> None:
    p = sub.add_parser("plot", **command_help(__doc__))
    p.add_argument("--store", default="results/results.jsonl", help="results store (default: %(default)s)")
    p.add_argument("--out-dir", default="results/plots", help="(default: %(default)s)")
    p.add_argument("--kind", action="append", choices=PLOT_KINDS, help=f"{' | '.join(PLOT_KINDS)} (default: all)")
    p.add_argument("--runs-dir", default="runs", help="run directories, for loss curves (default: %(default)s)")
    p.set_defaults(func=cmd_plot)


def cmd_plot(args: argparse.Namespace) -> int:
    from hdfm_bench.evaluation import plots

    df = _read_store(args.store, "plot")
    out = Path(args.out_dir)
    kinds = args.kind or PLOT_KINDS
    fns = {**plots.PLOTS, "losses": lambda frame, dest: plots.plot_run_losses(frame, args.runs_dir, dest)}
    for kind in kinds:
        if kind not in fns:
            raise ValueError(f"unknown plot '{kind}'; known: {', '.join(fns)}")
    for kind in kinds:
        print(f"wrote {fns[kind](df, out / f'{kind}.png')}")
    return 0
