"""``hdfm-bench status``: per-run state of a sweep: pending / running / done / failed / interrupted

From the sweep's store (evaluations done), run records (training progress) and submitit (job state, error,
log path). Exit 1 if any run failed.
"""
from __future__ import annotations

import argparse
import json

from .options import add_eval, add_set, add_spec, command_help


def add_parser(sub) -> None:
    p = sub.add_parser("status", **command_help(__doc__))
    add_spec(p)
    add_set(p, "the [base] overrides the sweep ran with")
    add_eval(p, "the [eval] overrides the sweep ran with")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_status)


def print_status(sweep, json_out: bool) -> int:
    """Print the sweep's per-run state (a table, or JSON); 1 if any run failed, else 0."""
    from hdfm_bench.sweeps.state import status, status_text

    rows = status(sweep)
    print(json.dumps(rows, indent=2) if json_out else status_text(rows))
    return 1 if any(r["state"] == "failed" for r in rows) else 0


def cmd_status(args: argparse.Namespace) -> int:
    from hdfm_bench.sweeps.spec import Sweep

    return print_status(Sweep.load(args.spec, overrides=args.set or [], eval_overrides=args.eval or [],
                                     check=False), args.json)
