"""``hdfm-bench report``: a results folder, store or sweep as one static HTML page

The table (the cells of ``hdfm-bench table``, best in bold), what each column was measured under, each
row's full protocol on demand, the selection grid of a tuned table (--best), the figures drawn from the
rows and the images of the results folder. No server, no network: open OUT/index.html in a browser.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .options import _read_store, add_seeds, add_set, best_selection, command_help


def add_parser(sub) -> None:
    p = sub.add_parser("report", **command_help(__doc__))
    p.add_argument("source", nargs="?", default="results/suite",
                   help="a results folder or .jsonl store, or a sweep spec (.toml) (default: %(default)s, what the "
                        "main job writes)")
    add_set(p, "with a spec: the [base] overrides it ran with")
    p.add_argument("--out", default="report", help="the report folder (default: %(default)s)")
    p.add_argument("--title", default=None, help="the page's title (default: names the source)")
    p.add_argument("--method", action="append", help="only the rows of this method label (repeatable; default: all)")
    p.add_argument("--metric", action="append", help="table column (repeatable; default: the table metrics present)")
    p.add_argument("--allow-mixed", action="store_true", help="tabulate columns whose protocols differ anyway")
    p.add_argument("--split", action="store_true", help="rows measured with different settings become separate rows")
    p.add_argument("--best", default=None, metavar="AXES",
                   help="report each row at its best setting over these protocol fields (as table --best), with the "
                        "selection grid")
    add_seeds(p)
    p.add_argument("--select-metric", default="fid", help="with --best: the metric chosen on (default: fid)")
    p.set_defaults(func=cmd_report)


def _source(args: argparse.Namespace):
    """(rows, images of the results folder) of a store, a folder holding one, or a sweep spec."""
    if args.source.endswith(".toml"):
        from hdfm_bench.sweeps.spec import Sweep
        from hdfm_bench.sweeps.state import sweep_frame

        df = sweep_frame(Sweep.load(args.source, overrides=args.set or [], check=False), with_setting=not args.best)
        if df.empty:
            raise ValueError(f"sweep {args.source}: no results stored yet (see hdfm-bench status {args.source})")
        return df, []
    if args.set:
        raise ValueError("--set applies to a sweep spec, not to a results store")
    df = _read_store(args.source, "report")
    folder = Path(args.source) if Path(args.source).is_dir() else Path(args.source).parent
    return df, sorted(folder.glob("*.png"))


def cmd_report(args: argparse.Namespace) -> int:
    from hdfm_bench.evaluation.protocol import TABLE_METRICS
    from hdfm_bench.evaluation.report import check_out, write_report

    check_out(args.out)
    best = None
    if args.best:
        axes, select, report = best_selection(args.best, args.select_seeds, args.report_seeds)
        best = {"axes": axes, "select": select, "report": report, "metric": args.select_metric,
                "select_text": args.select_seeds, "report_text": args.report_seeds}
    df, images = _source(args)
    if args.method:
        unknown = sorted(set(args.method) - set(df["method"]))
        if unknown:
            raise ValueError(f"no rows of method {unknown[0]!r} in {args.source}; have "
                             f"{', '.join(map(repr, dict.fromkeys(df['method'])))}")
        df = df[df["method"].isin(args.method)]
    metrics = args.metric or [m for m in TABLE_METRICS if m in set(df["metric"])]
    page = write_report(df, args.out, source=args.source, images=images, columns=metrics or None, best=best,
                        allow_mixed=args.allow_mixed, split=args.split, title=args.title)
    print(f"wrote {page} ({len(images)} images of the results folder; open it in a browser)")
    return 0
