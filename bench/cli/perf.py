"""``hdfm-bench perf``: run the benchmarks and update results/perf.md

Side-by-side speed benchmarks; each writes its own section of the output Markdown file (medians, ratios, the
machine).
"""
from __future__ import annotations

import argparse

from hdfm_bench.perf.runner import BENCHMARKS, DEFAULT_REPEATS

from .options import check_outputs, command_help


def add_parser(sub) -> None:
    p = sub.add_parser("perf", **command_help(__doc__))
    p.add_argument("--only", action="append", metavar="NAME",
                   help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}: "
                        "spectral (blur operator vs FFT DCT), metrics (FID/KID/PR on 10k), inception (standard FID "
                        "extractor images/s), memory (streaming evaluation at n = 2,000 vs 20,000), toy (JAX vmapped "
                        "vs torch), overhead (path + loss per training step), sampler (per NFE), suite (the default "
                        "suite's wall time and memory), gpu (ViT-B images/s; needs CUDA). Default: all")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed calls per measurement (default: each benchmark's own: "
                        + ", ".join(f"{k} {v}" for k, v in DEFAULT_REPEATS.items()) + ")")
    p.add_argument("--out", default="results/perf.md", help="Markdown file to update (default: %(default)s)")
    p.set_defaults(func=cmd_perf)


def cmd_perf(args: argparse.Namespace) -> int:
    from hdfm_bench.perf import runner

    check_outputs((args.out, "--out"))  # before the benchmarks run, not after
    out = runner.run(only=args.only, out=args.out, repeats=args.repeats)
    print(f"wrote {out}")
    return 0
