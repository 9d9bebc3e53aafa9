"""``hdfm-bench reproduce toy|ablation|spectral|headtohead|stability``: the paper reproductions.

Each reproduction is a sub-command with only the options it uses. ``hdfm-bench reproduce`` without
one runs ``toy`` (:func:`default_reproduction` puts the name first in argv before parsing, as the
command line has always accepted it anywhere after ``reproduce``).
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence

from hdfm_bench.core.io import check_output_folder
from hdfm_bench.specs import SPECS_DIR
from hdfm_bench.sweeps.submitit_adapter import EXECUTORS

from .options import add_eval, add_seeds, add_set, add_threads, best_selection

OUTPUTS = "Outputs under results/{what}/ (--quick: <out>/quick)."
#: name → (one-line help, description); toy runs when no reproduction is named
REPRODUCTIONS = {
    "toy": ("JiT §3.7 / HDFM Fig. 3-4: 2-D data buried in D dims, x/eps/v-prediction (JAX)",
            "JiT §3.7 / HDFM Fig. 3-4 — 2-D data buried in D in {2, 8, 16, 64, 512} dims; x/eps/v-prediction "
            "(v-loss) under noise_fm and hdfm, 3 seeds, one vmapped JAX program per (path, D); sliced "
            "Wasserstein + MMD table, scatter and trajectory figures."),
    "ablation": ("HDFM's ablation on MNIST: blur on/off x x/v/eps-prediction + BDM, IHDM, cold blur, HDFM code",
                 "HDFM's ablation (blur on/off x x/v/eps-prediction + BDM, IHDM, cold blur, HDFM code) on MNIST, "
                 "3 seeds, sampler budgets 10/20/50 (bench/specs/ablation-mnist.toml)."),
    "spectral": ("HDFM Fig. 5: R_hf along sampling for full noise, HDFM, pure blur and attenuated blur",
                 "HDFM Fig. 5 — R_hf along sampling for full noise, HDFM, pure blur and HDFM with blur attenuated "
                 "by r; exact vs adaptive beta."),
    "headtohead": ("every method at its best setting (CFG x EMA x budget) at a longer budget, on MNIST",
                   "Every method at its best setting, at a longer budget (bench/specs/headtohead-mnist.toml, 3 "
                   "training seeds): each row's CFG scale x EMA decay x sampler budget chosen on sampling seed A, "
                   "reported on seed B for every training seed, at the end of training and at kept checkpoints "
                   "(FID against training steps)."),
    "stability": ("sampler stability: does a 1e-6 change of the sampler's input change the images?",
                  "Numerical stability of each path's own sampler and budget, on the head-to-head's runs "
                  "(trained if needed): the same n images drawn again with the prior z0 + 1e-6 x noise, and again "
                  "with the network's input perturbed at every call; the share of pixels that differ and |ΔFID| "
                  "against the seed noise of FID."),
}
#: the shipped sweep spec each sweep-based reproduction runs by default
SPECS = {"ablation": "ablation-mnist.toml", "spectral": "spectral-mnist.toml", "headtohead": "headtohead-mnist.toml",
         "stability": "headtohead-mnist.toml"}


def add_parser(sub) -> None:
    p = sub.add_parser("reproduce", help="paper reproductions: toy (JAX), ablation, spectral (HDFM Fig. 5)",
                       description="Paper reproductions, one sub-command each (without one: toy). "
                                   + OUTPUTS.format(what="<what>"))
    whats = p.add_subparsers(dest="what", metavar="WHAT")
    whats.required = True
    for what, (help, description) in REPRODUCTIONS.items():
        q = whats.add_parser(what, help=help, description=f"{description} {OUTPUTS.format(what=what)}")
        _add_options(q, what)
        add_threads(q)
        q.set_defaults(func=cmd_reproduce)


def _add_options(p: argparse.ArgumentParser, what: str) -> None:
    """The options ``what`` takes: --quick and --out, then --dist (toy) or the sweep's options."""
    p.add_argument("--quick", action="store_true", help="a small budget for a first look (about a minute)")
    p.add_argument("--out", default=None, help=f"output folder (default: results/{what}; --quick: <out>/quick)")
    if what == "toy":
        p.add_argument("--dist", default="spiral", help="the 2-D distribution of the toy task (spiral, "
                                                        "eight_gaussians, two_moons; default: %(default)s)")
        return
    p.add_argument("--executor", default="debug", choices=EXECUTORS,
                   help="where the runs train (debug = in this process, one by one; default: %(default)s)")
    p.add_argument("--spec", default=None, help=f"another sweep spec (default: the shipped {SPECS[what]} in "
                                                 f"{SPECS_DIR})")
    add_set(p, "override a [base] field of the spec, e.g. task=cifar10")
    if what == "ablation":
        add_eval(p, "override an [eval] field, e.g. 'cfg_scale=[1, 2, 3]' or 'seed=[0, 1]'")
        p.add_argument("--best", default=None, metavar="AXES",
                       help="each row at its best setting over these protocol fields (e.g. cfg_scale,ema), "
                            "chosen per budget on --select-seeds and reported on --report-seeds")
        add_seeds(p)
    if what == "headtohead":
        p.add_argument("--inception-n", type=int, default=0, metavar="N",
                       help="also the Inception FID of each row's chosen setting on N images (default: off)")


def _value_options() -> dict[str, bool]:
    """Every option string of the reproductions → whether it takes a value."""
    out = {}
    for what in REPRODUCTIONS:
        p = argparse.ArgumentParser(add_help=False)
        _add_options(p, what)
        add_threads(p)
        out.update({o: a.nargs != 0 for a in p._actions for o in a.option_strings})
    return out


def _takes_value(token: str, options: dict[str, bool]) -> bool:
    """Whether an option token (possibly an unambiguous abbreviation, as argparse allows) takes the next token."""
    if "=" in token or not token.startswith("--"):
        return False
    matches = [o for o in options if o == token] or [o for o in options if o.startswith(token)]
    return len(matches) == 1 and options[matches[0]]


def default_reproduction(argv: Sequence[str]) -> list[str]:
    """``argv`` with the reproduction named right after ``reproduce``: moved there from wherever it stands
    among the options, or ``toy`` when none is named (the default); unchanged for any other command, for
    ``-h``/``--help`` before a name, and when another word stands where the name would (argparse names it)."""
    argv = list(argv)
    at = next((i for i, tok in enumerate(argv) if not tok.startswith("-")), None)
    if at is None or argv[at] != "reproduce":
        return argv
    head, rest = argv[:at + 1], argv[at + 1:]
    options, j = _value_options(), 0
    while j < len(rest):
        tok = rest[j]
        if tok in REPRODUCTIONS:
            return head + [tok] + rest[:j] + rest[j + 1:]
        if tok in ("-h", "--") or not tok.startswith("-") or (len(tok) > 2 and "--help".startswith(tok)):
            return argv
        j += 2 if _takes_value(tok, options) else 1
    return head + ["toy"] + rest


def _toy(args: argparse.Namespace) -> str:
    from hdfm_bench.experiments.toy import reproduce_toy

    summary = reproduce_toy(quick=args.quick, out=args.out or "results/toy", dist=args.dist)
    return f"wrote {summary['table']} and {', '.join(summary['figures'].values())}"


def _ablation(args: argparse.Namespace) -> str:
    if args.best:  # refused before any work, as `table --best` refuses it
        best_selection(args.best, args.select_seeds, args.report_seeds)
    from hdfm_bench.experiments.ablation import reproduce_ablation

    summary = reproduce_ablation(quick=args.quick, out=args.out or "results/ablation", executor=args.executor,
                                 spec=args.spec, sets=args.set or [], eval_sets=args.eval or [],
                                 best=args.best, select_seeds=args.select_seeds, report_seeds=args.report_seeds)
    return f"wrote {summary['table']} and {summary['figure']}"


def _spectral(args: argparse.Namespace) -> str:
    from hdfm_bench.experiments.spectral import reproduce_spectral

    summary = reproduce_spectral(quick=args.quick, out=args.out or "results/spectral", executor=args.executor,
                                 sets=args.set or [], spec=args.spec)
    return f"wrote {summary['table']} and {', '.join(summary['figures'])}"


def _headtohead(args: argparse.Namespace) -> str:
    from hdfm_bench.experiments.headtohead import reproduce_headtohead

    summary = reproduce_headtohead(quick=args.quick, out=args.out or "results/headtohead", executor=args.executor,
                                   spec=args.spec, sets=args.set or [], inception_n=args.inception_n)
    return f"wrote {summary['table']} and {summary['figure']}"


def _stability(args: argparse.Namespace) -> str:
    from hdfm_bench.experiments.stability import reproduce_stability

    summary = reproduce_stability(quick=args.quick, out=args.out or "results/stability", executor=args.executor,
                                  spec=args.spec, sets=args.set or [])
    return f"wrote {summary['table']} and {summary['figure']}"


RUNNERS = {"toy": _toy, "ablation": _ablation, "spectral": _spectral, "headtohead": _headtohead,
           "stability": _stability}


def cmd_reproduce(args: argparse.Namespace) -> int:
    """Paper reproductions (results under results/<what>/)."""
    if args.out:
        check_output_folder(args.out, "--out")
    print(RUNNERS[args.what](args))
    return 0
