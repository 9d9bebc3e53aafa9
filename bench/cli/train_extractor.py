"""``hdfm-bench train-extractor``: train a domain classifier (FID extractor of a small task) → .pt

Train the domain classifier of a task with its fixed recipe and write its weights and a JSON (recipe, test
accuracy, SHA-256). The package ships the trained files and uses them as they are (pinned by SHA-256), so
every machine measures with the same instrument; this command makes such a file for a new task or a new
recipe. Two trainings need not give the same bytes.
"""
from __future__ import annotations

import argparse

from hdfm_bench.evaluation.metrics.extractors import EXTRACTORS

from .options import command_help


def add_parser(sub) -> None:
    p = sub.add_parser("train-extractor", **command_help(__doc__))
    tasks = ", ".join(e["task"] for e in EXTRACTORS.values() if e["task"])
    p.add_argument("task", nargs="?", default="mnist", help=f"a task with a domain-TASK extractor: {tasks} "
                                                            "(default: %(default)s)")
    p.add_argument("--out", default=None, help="the .pt to write (default: domain-TASK.pt here)")
    p.set_defaults(func=cmd_train_extractor)


def cmd_train_extractor(args: argparse.Namespace) -> int:
    """Train a domain classifier (the FID extractor of a small task) and write the file that gets shipped."""
    from hdfm_bench.evaluation.metrics.extractors import train_extractor

    out = train_extractor(args.task, args.out or f"domain-{args.task}.pt")
    print(f"wrote {out['path']} (+ .json): {out['extractor']}, test accuracy {out['test_accuracy']:.4f}, trained in "
          f"{out['train_seconds']:.0f} s; sha256 {out['sha256']}. To ship it: put both files in "
          f"bench/evaluation/metrics/weights/ and pin this sha256 in its register_extractor(...) call "
          f"(bench/evaluation/metrics/extractors.py).")
    return 0
