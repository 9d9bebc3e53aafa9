"""``hdfm-bench train``: train one run from a TOML config with command-line overrides

Train (or resume) one run. Values come from the defaults below, then the TOML file, then these options / --set
KEY=VALUE. Running the same command again resumes from the last checkpoint.
"""
from __future__ import annotations

import argparse
import dataclasses
import json

from hdfm_bench.backbones import BACKBONES
from hdfm_bench.core import plugins
from hdfm_bench.core.config import DOCS, RunConfig
from hdfm_bench.methods import PATHS, TARGETS
from hdfm_bench.tasks import TASKS

from .options import TERMINATION, add_set, command_help

#: the fields whose choices are a registry's names (help texts read them from it, never from a list here)
CHOICES = {"task": TASKS, "path": PATHS, "target": TARGETS, "loss": TARGETS, "backbone": BACKBONES}


def add_parser(sub) -> None:
    p = sub.add_parser("train", **command_help(__doc__))
    p.add_argument("config", nargs="?", default=None, help="TOML run config (keys as the options below)")
    add_set(p, "override any key (a.b=v for params)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    for f in RunConfig.fields():
        if f.name == "plugins":  # the global --plugin (recorded in the config by cmd_train)
            continue
        flag = "--" + f.name.replace("_", "-")
        doc = DOCS.get(f.name, "") + (f": {' | '.join(CHOICES[f.name])}" if f.name in CHOICES else "")
        if f.name.endswith("_params"):
            p.add_argument(flag, action="append", metavar="KEY=VALUE", default=None,
                           help=f"{doc}; repeatable (default: none)")
        elif f.name == "ema_decays":
            p.add_argument(flag, type=float, nargs="+", default=None, help=f"{doc} (default: {list(f.default)})")
        elif isinstance(f.default, bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None,
                           help=f"{doc} (default: {f.default})")
        else:
            p.add_argument(flag, type=type(f.default), default=None, help=f"{doc} (default: {f.default!r})")
    p.set_defaults(func=cmd_train)


def _config_from_args(args: argparse.Namespace) -> RunConfig:
    overrides = list(args.set or [])
    for f in RunConfig.fields():
        value = getattr(args, f.name, None) if f.name != "plugins" else None
        if value is None:
            continue
        if isinstance(f.default, bool) or f.type in (bool, "bool"):
            overrides.append(f"{f.name}={'true' if value else 'false'}")
        elif f.name.endswith("_params"):
            overrides += [f"{f.name}.{kv}" for kv in value]
        elif f.name == "ema_decays":
            overrides.append(f"ema_decays=[{', '.join(str(v) for v in value)}]")
        elif isinstance(value, str):
            overrides.append(f"{f.name}={json.dumps(value)}")
        else:
            overrides.append(f"{f.name}={value}")
    from hdfm_bench.training import with_plugin_origins

    cfg = RunConfig.load(args.config, overrides)
    if args.plugin:  # --plugin joins the run's own plugins: its jobs, ranks and evaluations load them too
        named = [*cfg.plugins, *map(plugins.absolute, args.plugin)]
        cfg = dataclasses.replace(cfg, plugins=tuple(dict.fromkeys(named)))
    return with_plugin_origins(cfg)


def cmd_train(args: argparse.Namespace) -> int:
    from hdfm_bench.sampling.live import grid_hook
    from hdfm_bench.training import train
    from hdfm_bench.training.distributed import end_group, start_torchrun

    cfg = _config_from_args(args)
    rank, _ = start_torchrun()  # under torchrun: one process per rank, DistributedDataParallel
    with TERMINATION.training():
        res = train(cfg, progress=not args.no_progress and rank == 0, should_stop=TERMINATION.should_stop,
                    on_checkpoint=grid_hook(cfg.run_dir()))
    end_group()
    if rank:
        return 0
    rec = res.record
    print(f"run {rec['run_id']}: {rec['status']}, final loss {rec.get('final_loss'):.5g}, "
          f"{rec['budget']['parameters']:,} parameters, {rec['budget']['images_seen']:,} images seen, "
          f"{rec['budget'].get('wall_time_s')} s -> {res.run_dir}")
    return 0
