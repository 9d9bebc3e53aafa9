"""``hdfm-bench list``: print every registry: paths, targets, samplers, backbones, tasks, extractors, metrics

Print every registered path with its parameters and defaults, the prediction targets, the samplers (with the
paths they run on), the backbones (sizes and parameters), the data tasks (parameters), the feature extractors
and the metrics.
"""
from __future__ import annotations

import argparse
import json
from typing import Any

from hdfm_bench.backbones import BACKBONES
from hdfm_bench.evaluation.metrics.extractors import EXTRACTORS
from hdfm_bench.evaluation.metrics.features import METRICS
from hdfm_bench.methods.catalog import describe as describe_methods
from hdfm_bench.tasks import TASKS

from .options import command_help

INDENT = f"  {'':<19} "


def add_parser(sub) -> None:
    p = sub.add_parser("list", **command_help(__doc__))
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_list)


def catalog() -> dict[str, Any]:
    """Every registry as plain data (what ``list --json`` prints)."""
    return {**describe_methods(), "backbones": BACKBONES.describe(), "tasks": TASKS.describe(),
            "extractors": EXTRACTORS.describe(), "metrics": METRICS.describe()}


def _fmt_default(v) -> str:
    return repr(v) if isinstance(v, str) else str(v)


def _paths(reg: dict) -> None:
    print(f"PATHS ({len(reg['paths'])})")
    for name, p in reg["paths"].items():
        d = p["default"]
        levels = f", {p['levels']} levels" if p["levels"] else ""
        print(f"  {name:<19} {p['summary']}{levels}")
        print(f"{INDENT}targets {', '.join(p['targets'])}; loss spaces {', '.join(p['loss_spaces'])}; "
              f"default {d['target']}-prediction, {d['loss']}-loss ({d['norm']})")
        for prm in p["parameters"]:
            print(f"  {'':<21}{prm['name']} = {_fmt_default(prm['default'])}  ({prm['type']}) {prm['doc']}")
    print(f"\nTARGETS ({len(reg['targets'])})")
    for name, doc in reg["targets"].items():
        print(f"  {name:<19} {doc}")


def _samplers(reg: dict) -> None:
    print(f"\nSAMPLERS ({len(reg['samplers'])})")
    for name, s in reg["samplers"].items():
        params = ", ".join(f"{q['name']}={_fmt_default(q['default'])}" for q in s["parameters"])
        kind = "stochastic" if s["stochastic"] else "deterministic"
        print(f"  {name:<19} {s['summary']}; {kind}; params: {params}")
        print(f"{INDENT}paths: {', '.join(s['paths'])}")


def _others(reg: dict) -> None:
    print(f"\nBACKBONES ({len(reg['backbones'])})")
    for name, b in reg["backbones"].items():
        print(f"  {name:<19} {b['summary']}")
        print(f"{INDENT}sizes {', '.join(b['sizes'])} (default {b['default_size']}): "
              + ", ".join(f"{q['name']}={_fmt_default(q['default'])}" for q in b["parameters"]))
    print(f"\nTASKS ({len(reg['tasks'])})")
    for name, t in reg["tasks"].items():
        print(f"  {name:<19} {t['summary']}")
        for q in t["parameters"]:
            default = "required" if q["required"] else _fmt_default(q["default"])
            print(f"  {'':<21}{q['name']} = {default}  ({q['type']}) {q['doc']}")
    print(f"\nEXTRACTORS ({len(reg['extractors'])})")
    for name, e in reg["extractors"].items():
        size = "any size" if e["input_size"] is None else f"images {tuple(e['input_size'])}"
        task = f"; domain classifier of task {e['task']}" if e["task"] else ""
        print(f"  {name:<19} {e['features']}-d features, {size}{task}")
        print(f"{INDENT}{e['summary']}")
    print(f"\nMETRICS ({len(reg['metrics'])})")
    for name, m in reg["metrics"].items():
        needs = "feature matrices" if m["needs_features"] else "feature statistics"
        print(f"  {name:<19} {m['summary']} -> {', '.join(m['outputs'])} (needs {needs})")


def cmd_list(args: argparse.Namespace) -> int:
    reg = catalog()
    if args.json:
        print(json.dumps(reg, indent=2, default=str))
        return 0
    print(f"Convention: {reg['convention']}\n")
    _paths(reg)
    _samplers(reg)
    _others(reg)
    return 0
