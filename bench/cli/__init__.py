"""The ``hdfm-bench`` command: thin wrappers over the Python API.

Every subcommand has ``--help`` and works with no arguments. Bad input (an unknown name, a bad
parameter, an incompatible combination) prints one line ``hdfm-bench: error: ...`` and exits 2
before anything is written; results are written atomically.

One module per command (``listing`` is ``list``), each with
``add_parser(subparsers)`` and its ``cmd_*`` function; ``options`` holds what several share.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from hdfm_bench.core import plugins
from hdfm_bench.core.messages import os_error_line
from hdfm_bench.core.signals import EXIT_TERMINATED, Preempted, Terminated
from hdfm_bench.core.threads import set_threads
from hdfm_bench.methods import ConfigError

from . import (
    diagnose,
    evaluate,
    gallery,
    listing,
    perf,
    plot,
    prepare,
    reference,
    report,
    reproduce,
    run,
    sample,
    score,
    status,
    sweep,
    table,
    train,
    train_extractor,
)
from .options import TERMINATION, add_plugin, add_threads

#: the commands in the order ``--help`` lists them
COMMANDS = (listing, gallery, perf, train, sample, evaluate, score, diagnose, reference, prepare, train_extractor,
            table, plot, report, sweep, status, reproduce, run)
#: the commands that compute nothing: they set no thread count
LIGHT = (listing.cmd_list, status.cmd_status)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hdfm-bench",
        description="Head-to-head benchmark of corruption processes for image generative models "
                    "(noise FM / JiT, HDFM, IHDM, Blurring Diffusion, cold diffusion). "
                    "Convention: t = 0 source, t = 1 data; images in [-1, 1].")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for command in COMMANDS:
        command.add_parser(sub)
    for name, p in sub.choices.items():
        if name != "reproduce":  # each reproduction takes --threads itself
            add_threads(p)
            add_plugin(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(reproduce.default_reproduction(sys.argv[1:] if argv is None else argv))
    TERMINATION.requested = False
    TERMINATION.install()
    try:
        plugins.load_entry_points()
        plugins.load_all(getattr(args, "plugin", None) or [])
        if args.func not in LIGHT:
            set_threads(args.threads)
        return args.func(args)
    except KeyboardInterrupt:
        print("hdfm-bench: interrupted (checkpoints kept; run the same command again to resume)", file=sys.stderr)
        return 130
    except Terminated:
        print("hdfm-bench: terminated (SIGTERM); finished results and checkpoints are kept; run the same command "
              "again to resume", file=sys.stderr)
        return EXIT_TERMINATED
    except Preempted as err:  # SIGTERM during training: the trainer checkpointed the step it finished
        print(f"hdfm-bench: terminated (SIGTERM) after step {err.step}: checkpoint written; run the same command "
              "again to resume", file=sys.stderr)
        return EXIT_TERMINATED
    except (ConfigError, ValueError, OSError, RuntimeError) as err:
        first = os_error_line(err) if isinstance(err, OSError) else \
            (str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__)
        print(f"hdfm-bench: error: {first}", file=sys.stderr)
        return 2
    finally:
        TERMINATION.uninstall()


__all__ = ["main", "build_parser", "TERMINATION", "COMMANDS"]
