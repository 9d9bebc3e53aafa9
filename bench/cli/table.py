"""``hdfm-bench table``: paper-style table from the results store (markdown, latex, csv)

Mean ± std over seeds per method and metric, best in bold; refuses columns mixing measurement protocols and
cells averaging anything but seeds (naming the field); flags budgets that differ (†).
"""
from __future__ import annotations

import argparse
import sys

from hdfm_bench.evaluation.tables import FORMATS as TABLE_FORMATS

from .options import _read_store, add_seeds, add_set, best_selection, check_outputs, command_help


def add_parser(sub) -> None:
    p = sub.add_parser("table", **command_help(__doc__))
    p.add_argument("spec", nargs="?", default=None, help="a sweep spec: tabulate that sweep's rows (else --store)")
    add_set(p, "with a spec: the [base] overrides it ran with")
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
    add_seeds(p)
    p.add_argument("--select-metric", default="fid", help="with --best: the metric chosen on (default: fid)")
    p.add_argument("--out", default=None, help="also write the table to this file")
    p.set_defaults(func=cmd_table)


def _rows(args: argparse.Namespace):
    """The rows to tabulate: a sweep's (labelled by its varying axes) or the results store's."""
    if not args.spec:
        return _read_store(args.store, "tabulate")
    from hdfm_bench.sweeps.spec import Sweep
    from hdfm_bench.sweeps.state import sweep_frame

    df = sweep_frame(Sweep.load(args.spec, overrides=args.set or [], check=False), with_setting=not args.best)
    if df.empty:
        raise ValueError(f"sweep {args.spec}: no results stored yet (see hdfm-bench status {args.spec})")
    return df


def cmd_table(args: argparse.Namespace) -> int:
    from hdfm_bench.core.io import write_text
    from hdfm_bench.evaluation import tables
    from hdfm_bench.evaluation.protocol import TABLE_METRICS

    df = _rows(args)
    check_outputs((args.out, "--out"))
    metrics = args.metric or [m for m in TABLE_METRICS if m in set(df.get("metric", []))]
    grid = None
    if args.best:
        axes, select, report = best_selection(args.best, args.select_seeds, args.report_seeds)
        df, grid = tables.best_settings(df, axes, select, report, metric=args.select_metric)
    text, warnings = tables.make_table(df, fmt=args.format, columns=metrics, allow_mixed=args.allow_mixed,
                                       split=args.split)
    if grid is not None:
        text = tables.best_setting_report(text, grid, axes, args.select_seeds, args.report_seeds,
                                          args.select_metric, args.format)
    print(text)
    for w in warnings:
        print(f"note: {w}", file=sys.stderr)
    if args.out:
        write_text(args.out, text)
    return 0
