"""``hdfm-bench run``: the default suite: train + sample 4 methods on MNIST (README's main job)

Train noise_fm (x-pred, v-loss), hdfm (x-pred), blurring_diffusion (x-pred, x-loss) and ihdm with one ViT and
one budget on MNIST, sample each class-conditionally and write a grid per method. Re-running resumes.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from hdfm_bench.core.config import BACKENDS
from hdfm_bench.evaluation.store import FILE_NAME, ResultStore
from hdfm_bench.training.protocols import PROTOCOLS

from .options import TERMINATION, command_help


def add_parser(sub) -> None:
    p = sub.add_parser("run", **command_help(__doc__))
    p.add_argument("--quick", action="store_true", help="a small budget for a first look (< 3 min)")
    p.add_argument("--method", action="append", help="only this method (repeatable)")
    p.add_argument("--protocol", default="shared", choices=PROTOCOLS,
                   help="shared: one ViT for every method; native: each method's paper recipe (U-Net for IHDM and "
                        "Blurring Diffusion, their conditioning and optimiser); native-cond: the native recipe made "
                        "class-conditional (default: %(default)s)")
    p.add_argument("--results", default=None,
                   help="where grids and tables go (default: results/suite, results/suite-native with --protocol "
                        "native, results/suite-jax with --backend jax)")
    p.add_argument("--out-dir", default="runs", help="where runs/checkpoints go (default: %(default)s)")
    p.add_argument("--backend", default=BACKENDS[0], choices=BACKENDS,
                   help="training framework (default: %(default)s; jax = the equinox twins, other run ids)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=False,
                   help="train and sample the backbone under torch.compile (~25 %% faster; the same numbers to float "
                        "rounding, but not bit-reproducible run to run; default: off)")
    p.add_argument("--tb", action=argparse.BooleanOptionalAction, default=True,
                   help="TensorBoard event files in each run's tb/ folder (watch with tensorboard --logdir "
                        "OUT_DIR; changes no number; default: on)")
    p.add_argument("--check", action="store_true",
                   help="compare every number with the suite already in the results folder (the committed one) and "
                        "print, per method, 'reproduced' or the differences; exit 1 if a number differs under the "
                        "same threads, compile setting, torch and CPU (scripts/main.sh does this)")
    p.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    """The default suite (the README's main job)."""
    from hdfm_bench.experiments.suite import check_reproduced, reference_snapshot, run_suite

    results = args.results or "-".join(["results/suite"] + [v for v in (args.protocol, args.backend)
                                                             if v not in ("shared", "torch")])
    folder = Path(results) / ("quick" if args.quick else "")
    reference = reference_snapshot(folder) if args.check else None  # read before this run replaces it
    summary = run_suite(quick=args.quick, results=results, out_dir=args.out_dir, methods=args.method,
                        backend=args.backend, compile=args.compile, termination=TERMINATION, protocol=args.protocol,
                        tb=args.tb)
    for name, m in summary["methods"].items():
        print(f"{name:<20} loss {m['final_loss']:.4f}  train {m['train_s']:>6.1f} s  sample+evaluate "
              f"{m['sample_s']:>5.1f} s  NFE {m['protocol']['nfe']:>4}  -> {m['grid']}")
    print(f"suite: training {summary['train_total_s']:.0f} s in all (recorded per run); this invocation "
          f"{summary['invocation_wall_s']:.0f} s; peak memory {summary['peak_rss_mb']:.0f} MB")
    if not args.check:
        return 0
    if reference is None:
        print(f"check: no earlier suite in {folder} to compare with")
        return 0
    lines, ok = check_reproduced(reference, ResultStore(folder / FILE_NAME).rows(), summary)
    print("\n".join(f"check: {line}" for line in lines))
    return 0 if ok else 1
