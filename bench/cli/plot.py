"""``hdfm-bench plot``: seaborn figures from the results store

FID versus counted NFE, per-band spectral ratios, the spectral ratio along sampling.
"""
from __future__ import annotations

import argparse
import sys

from hdfm_bench.core.io import check_output_folder
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
    """Draw every asked kind (default: all) that the store has data for; name the ones skipped and why.
    Nothing drawn at all is an error."""
    from hdfm_bench.evaluation import plots
    from hdfm_bench.evaluation.tables import TableError

    df = _read_store(args.store, "plot")
    out = check_output_folder(args.out_dir, "--out-dir")
    fns = {**plots.PLOTS, "losses": lambda frame, dest: plots.plot_run_losses(frame, args.runs_dir, dest)}
    skipped = []
    for kind in args.kind or PLOT_KINDS:
        try:
            print(f"wrote {fns[kind](df, out / f'{kind}.png')}")
        except TableError as err:  # this kind has no data in the store: the others are still drawn
            skipped.append(f"{kind} ({err})")
    if len(skipped) == len(args.kind or PLOT_KINDS):
        raise ValueError(f"nothing to plot from {args.store}: " + "; ".join(skipped))
    for note in skipped:
        print(f"note: skipped {note}", file=sys.stderr)
    return 0
