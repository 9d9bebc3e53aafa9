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

    df = _read_store(args.store, "plot")
    out = check_output_folder(args.out_dir, "--out-dir")
    fns = {**plots.PLOTS, "losses": lambda frame, dest: plots.plot_run_losses(frame, args.runs_dir, dest)}
    drawn, skipped = plots.draw_kinds(df, out, {kind: fns[kind] for kind in args.kind or PLOT_KINDS})
    notes = [f"{kind} ({why})" for kind, why in skipped.items()]
    if not drawn:
        raise ValueError(f"nothing to plot from {args.store}: " + "; ".join(notes))
    for path in drawn.values():
        print(f"wrote {path}")
    for note in notes:
        print(f"note: skipped {note}", file=sys.stderr)
    return 0
