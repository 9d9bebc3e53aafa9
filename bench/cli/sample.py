"""``hdfm-bench sample``: sample from a trained run: sampler, steps, CFG, EMA -> PNG grid

Draw class-balanced samples from a run's checkpoint and write a PNG grid, the uint8 samples (.pt) and the
protocol (.json).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from hdfm_bench.sampling.settings import SamplingSettings

from .options import _add_sampling_args, _sampling_fields, check_outputs, command_help


def add_parser(sub) -> None:
    p = sub.add_parser("sample", **command_help(__doc__))
    p.add_argument("run", help="run directory (holds checkpoint.pt)")
    _add_sampling_args(p, n_default=100)
    p.add_argument("--out", default=None, help="output stem: STEM.png, STEM.pt, STEM.json; a folder (existing, or "
                                               "ending in /) gets the default name inside it (default: "
                                               "RUN/samples/<sampler>-<steps>-cfg-ema-seed)")
    p.set_defaults(func=cmd_sample)


def _check_outputs(args: argparse.Namespace) -> None:
    """--out (a stem: its three files; a folder: a file inside it) and --save-samples, before any work."""
    from hdfm_bench.sampling.output import out_is_folder

    if not out_is_folder(args.out):
        outs = [f"{args.out}.{ext}" for ext in ("png", "pt", "json")]
    else:
        outs = [] if args.out is None else [Path(args.out) / "x"]
    check_outputs(*[(out, "--out") for out in outs], (args.save_samples, "--save-samples"))


def _save_samples(out: dict, dest: str) -> None:
    """--save-samples: the images in an exchange format (.npz, .zip or a folder of PNGs)."""
    from hdfm_bench.sampling.output import SampleWriter
    from hdfm_bench.tasks import unit_to_u8

    writer = SampleWriter.open(dest, len(out["samples"]), tuple(out["samples"].shape[1:]))
    writer.add(unit_to_u8(out["samples"]), out["labels"], range(len(out["samples"])))
    print(f"wrote {writer.close()}")


def cmd_sample(args: argparse.Namespace) -> int:
    from hdfm_bench.sampling.generate import generate
    from hdfm_bench.sampling.output import sample_stem, write_samples

    fields = _sampling_fields(args)
    if len(fields["seed"]) != 1:
        raise ValueError("sample takes one --seed")
    fields["seed"] = fields["seed"][0]
    settings = SamplingSettings(**fields)
    _check_outputs(args)
    out = generate(args.run, settings, progress=True)
    stem = sample_stem(out["protocol"], args.run, args.out, cfg_scale=args.cfg_scale, ema=args.ema,
                       seed=fields["seed"], checkpoint_step=args.checkpoint_step)
    files = write_samples(out, stem)
    if args.save_samples:
        _save_samples(out, args.save_samples)
    p = out["protocol"]
    print(f"{p['n']} samples, sampler {p['sampler']} ({p['steps']} steps, {p['nfe']} NFE counted), "
          f"CFG {p['cfg_scale']:g} on {p['cfg_interval']}, EMA {p['ema']}, checkpoint step "
          f"{p['checkpoint_step']} -> {files['grid']}")
    return 0
