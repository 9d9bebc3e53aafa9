"""The ``hdfm-bench`` command: thin wrappers over the Python API.

Every subcommand has ``--help`` and works with no arguments. Bad input (an unknown name, a bad
parameter, an incompatible combination) prints one line ``hdfm-bench: error: ...`` and exits 2
before anything is written; results are written atomically.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from methods import PATHS, SAMPLERS, TARGETS, ConfigError, get_path, list_paths


def _fmt_default(v) -> str:
    return repr(v) if isinstance(v, str) else str(v)


def registry() -> dict:
    """The registry as plain data (what ``hdfm-bench list --json`` prints)."""
    paths = {}
    for name, cls in PATHS.items():
        path = get_path(name)
        paths[name] = {
            "summary": cls.summary,
            "parameters": [{**p, "default": p["default"]} for p in cls.parameters()],
            "targets": list(cls.targets),
            "loss_spaces": list(cls.loss_spaces),
            "default": {"target": cls.default_target, "loss": cls.default_loss, "norm": cls.default_norm},
            "levels": path.levels,
        }
    samplers = {}
    for name, cls in SAMPLERS.items():
        samplers[name] = {"summary": cls.summary, "stochastic": cls.stochastic, "needs": cls.needs,
                          "parameters": [{"name": p["name"], "default": p["default"]} for p in cls.parameters()],
                          "paths": [p for p in list_paths() if cls().path_refusal(get_path(p)) is None]}
    return {"convention": "t in [0, 1]: t = 0 source (noise / most corrupted), t = 1 data; data in [-1, 1]",
            "paths": paths, "targets": dict(TARGETS), "samplers": samplers}


def cmd_list(args: argparse.Namespace) -> int:
    reg = registry()
    if args.json:
        print(json.dumps(reg, indent=2, default=str))
        return 0
    print(f"Convention: {reg['convention']}\n")
    print(f"PATHS ({len(reg['paths'])})")
    for name, p in reg["paths"].items():
        d = p["default"]
        levels = f", {p['levels']} levels" if p["levels"] else ""
        print(f"  {name:<19} {p['summary']}{levels}")
        print(f"  {'':<19} targets {', '.join(p['targets'])}; loss spaces {', '.join(p['loss_spaces'])}; "
              f"default {d['target']}-prediction, {d['loss']}-loss ({d['norm']})")
        for prm in p["parameters"]:
            print(f"  {'':<21}{prm['name']} = {_fmt_default(prm['default'])}  ({prm['type']}) {prm['doc']}")
    print(f"\nTARGETS ({len(reg['targets'])})")
    for name, doc in reg["targets"].items():
        print(f"  {name:<19} {doc}")
    print(f"\nSAMPLERS ({len(reg['samplers'])})")
    for name, s in reg["samplers"].items():
        params = ", ".join(f"{q['name']}={_fmt_default(q['default'])}" for q in s["parameters"])
        kind = "stochastic" if s["stochastic"] else "deterministic"
        print(f"  {name:<19} {s['summary']}; {kind}; params: {params}")
        print(f"  {'':<19} paths: {', '.join(s['paths'])}")
    return 0


def _times(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got '{text}'") from None


def cmd_gallery(args: argparse.Namespace) -> int:
    from .gallery import make_gallery

    out = make_gallery(args.out, times=args.times, seed=args.seed)
    print(f"wrote {out}")
    return 0


def cmd_perf(args: argparse.Namespace) -> int:
    from . import perf

    out = perf.run(only=args.only, out=args.out, repeats=args.repeats)
    print(f"wrote {out}")
    return 0


def cmd_main(args: argparse.Namespace) -> int:
    """The default suite. Today: the path gallery (later issues add training and evaluation)."""
    from .gallery import make_gallery

    out = make_gallery(args.gallery)
    print(f"[main] path gallery: wrote {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hdfm-bench",
        description="Head-to-head benchmark of corruption processes for image generative models "
                    "(noise FM / JiT, HDFM, IHDM, Blurring Diffusion, cold diffusion). "
                    "Convention: t = 0 source, t = 1 data; images in [-1, 1].")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("list", help="print the registry: paths (parameters, defaults), targets, samplers",
                       description="Print every registered path with its parameters and defaults, "
                                   "the prediction targets and the samplers (with the paths they run on).")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("gallery", help="write results/paths.png: real images corrupted by every path",
                       description="Corrupt a scikit-learn digit and colour photo with every path "
                                   "(default parameters) at several t and write one PNG.")
    p.add_argument("--out", default="results/paths.png", help="output PNG (default: %(default)s)")
    p.add_argument("--times", type=_times, default=[0.0, 0.25, 0.5, 0.75, 1.0],
                   help="comma-separated t values in [0, 1] (default: 0,0.25,0.5,0.75,1)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default: %(default)s)")
    p.set_defaults(func=cmd_gallery)

    p = sub.add_parser("perf", help="run the benchmarks and update results/perf.md",
                       description="Side-by-side speed benchmarks; each writes its own section of "
                                   "the output Markdown file (medians, ratios, the machine).")
    p.add_argument("--only", action="append", metavar="NAME",
                   help="run only this benchmark (repeatable); known: spectral")
    p.add_argument("--repeats", type=int, default=50, help="timed calls per measurement (default: %(default)s)")
    p.add_argument("--out", default="results/perf.md", help="Markdown file to update (default: %(default)s)")
    p.set_defaults(func=cmd_perf)

    p = sub.add_parser("main", help="the default suite (what the README's main command runs)",
                       description="Run the default suite. Currently: the path gallery.")
    p.add_argument("--gallery", default="results/paths.png", help="gallery output (default: %(default)s)")
    p.set_defaults(func=cmd_main)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, ValueError, FileNotFoundError, PermissionError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"hdfm-bench: error: {first}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
