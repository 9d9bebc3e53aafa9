"""``hdfm-bench diagnose``: why a run fails: held-out loss vs the linear floor, and noise pass-through

At a grid of times (the path's own levels when it has them), feed held-out images corrupted with fixed
noise to the run's network and measure (docs/methods.md §15): its loss in its target's own space against
the loss of the best linear estimator of that target, and the fraction c of the input's noise its ε̂
carries, per frequency band (c well below 1 where a frequency is still blurred is what breaks
Blurring Diffusion's ε-recipe, §5.4). Writes diagnose.json and diagnose.png and prints the table.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .options import _ema, _positive_int, check_outputs, command_help

#: a bound on --points (each point is one pass of the network over the n held-out images)
MAX_POINTS = 200


def add_parser(sub) -> None:
    p = sub.add_parser("diagnose", **command_help(__doc__))
    p.add_argument("run", help="run directory (holds checkpoint.pt)")
    p.add_argument("-n", type=_positive_int, default=512, help="held-out images (default: %(default)s)")
    p.add_argument("--points", type=_positive_int, default=10, help="times (or levels) probed (default: %(default)s)")
    p.add_argument("--ema", type=_ema, default=-1.0,
                   help="EMA decay, or 'none' for the raw weights (default: the run's slowest EMA)")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise (default: %(default)s)")
    p.add_argument("--out", default=None, help="output folder (default: RUN/diagnose)")
    p.set_defaults(func=cmd_diagnose)


def cmd_diagnose(args: argparse.Namespace) -> int:
    from hdfm_bench.evaluation.diagnose import diagnose_run, diagnosis_table, write_diagnosis

    out = Path(args.out) if args.out else Path(args.run) / "diagnose"
    if args.points > MAX_POINTS:
        raise ValueError(f"--points {args.points} is more than {MAX_POINTS} (each point is a pass over the n images)")
    check_outputs((out / "diagnose.json", "--out"), (out / "diagnose.png", "--out"))
    d = diagnose_run(args.run, n=args.n, points=args.points, ema=args.ema, seed=args.seed)
    files = write_diagnosis(d, out)
    print(diagnosis_table(d))
    print(f"{d['path']}, target {d['target']}, step {d['checkpoint_step']}, EMA {d['ema']}, n {d['n']} "
          f"({d['split']} split; floor from {d['covariance']} covariance of {d['n_covariance']} training images) "
          f"-> {files['json']}, {files['png']}")
    return 0
