"""What several ``hdfm-bench`` commands share: option declarations and types, the sampling options,
reading a results store, and the SIGTERM handling of the process (``TERMINATION``)."""
from __future__ import annotations

import argparse
import math
import sys

from hdfm_bench.core.overrides import OverrideError, parse_assignments
from hdfm_bench.core.signals import Termination
from hdfm_bench.core.threads import THREADS_ENV
from hdfm_bench.evaluation.metrics.extractors import EXTRACTORS
from hdfm_bench.evaluation.metrics.features import METRICS
from hdfm_bench.evaluation.protocol import FEATURE_METRICS
from hdfm_bench.methods import ConfigError
from hdfm_bench.sampling.settings import DEFAULT_BATCH_SIZE, DEFAULT_CFG_INTERVAL, SamplingSettings
from hdfm_bench.specs import DEFAULT_SPEC, shipped

#: SIGTERM: at the next step boundary while training, at once elsewhere (core.signals)
TERMINATION = Termination()


# ---- option types ------------------------------------------------------------------------------------------------

def _positive_seconds(text: str) -> float:
    """A finite number of seconds > 0 (a timeout)."""
    try:
        x = float(text)
    except ValueError:
        x = math.nan
    if not (math.isfinite(x) and x > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got '{text}'")
    return x


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{text}'")
    return n


def _ema(text: str) -> float | None:
    """``--ema``: a decay the run keeps, or ``none`` for the raw weights."""
    if text.strip().lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a decay such as 0.999 or 'none', got '{text}'") from None


def _times(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got '{text}'") from None


# ---- options declared by several commands ---------------------------------------------------------------------

def command_help(doc: str) -> dict[str, str]:
    r"""A command's one-line ``help`` and its ``description``, from its module's docstring: the first line
    ``\`\`hdfm-bench NAME\`\`: HELP``, a blank line, then the description (argparse re-wraps it)."""
    head, _, body = doc.strip().partition("\n\n")
    return {"help": head.split(": ", 1)[1], "description": " ".join(body.split())}


def add_set(p: argparse.ArgumentParser, help: str) -> None:
    """``--set KEY=VALUE`` (repeatable); each command says what it overrides."""
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help=help)


def add_eval(p: argparse.ArgumentParser, help: str) -> None:
    """``--eval KEY=VALUE`` (repeatable): an [eval] field of a sweep spec."""
    p.add_argument("--eval", action="append", metavar="KEY=VALUE", help=help)


def add_slurm(p: argparse.ArgumentParser) -> None:
    """``--slurm KEY=VALUE`` (repeatable): a [slurm] resource of a sweep spec."""
    p.add_argument("--slurm", action="append", metavar="KEY=VALUE",
                   help="override a [slurm] resource under submitit's name, e.g. partition=gpu (repeatable)")


def add_spec(p: argparse.ArgumentParser) -> None:
    """The optional positional sweep spec of ``sweep`` and ``status`` (default: the shipped digits-mini)."""
    p.add_argument("spec", nargs="?", default=str(DEFAULT_SPEC),
                   help=f"sweep spec: a TOML file or a shipped spec's name ({', '.join(shipped())}); "
                        "default: the shipped digits-mini")


def add_seeds(p: argparse.ArgumentParser) -> None:
    """``--select-seeds`` / ``--report-seeds``: the disjoint sampling seeds of ``--best``."""
    p.add_argument("--select-seeds", default="0", help="with --best: sampling seeds the choice is made on (default: 0)")
    p.add_argument("--report-seeds", default="1", help="with --best: sampling seeds reported (default: 1)")


def best_selection(best: str, select_seeds: str, report_seeds: str) -> tuple[list[str], tuple, tuple]:
    """``--best AXES`` with its seeds, checked (tables.check_selection): (axes, select seeds, report seeds)."""
    from hdfm_bench.evaluation import tables

    axes = [a.strip() for a in best.split(",") if a.strip()]
    select, report = tables.parse_seeds(select_seeds), tables.parse_seeds(report_seeds, "--report-seeds")
    tables.check_selection(axes, select, report)
    return axes, select, report


def add_measurement_args(p: argparse.ArgumentParser) -> None:
    """What an image set is measured with (``evaluate``, ``score``): extractor, reference, feature metrics."""
    p.add_argument("--extractor", default=None,
                   help=f"feature extractor: {', '.join(EXTRACTORS)} (inception-offline: standard FID; default: "
                        "the task's protocol)")
    p.add_argument("--reference-split", default=None, help="reference split (default: the task's protocol)")
    p.add_argument("--reference", default=None, metavar="FILE.npz",
                   help="reference statistics (mu, sigma: pytorch-fid / EDM / ADM format, or `hdfm-bench reference`) "
                        "instead of a split; FID only unless the file holds the features")
    p.add_argument("--metrics", nargs="+", default=list(FEATURE_METRICS), choices=list(METRICS),
                   help="feature metrics (default: %(default)s); FID alone keeps only its running statistics")


def add_plugin(p: argparse.ArgumentParser) -> None:
    """``--plugin``, which every command takes (core.plugins)."""
    p.add_argument("--plugin", action="append", metavar="MODULE|FILE.py", default=None,
                   help="load a module or .py file that registers paths, samplers, backbones, tasks, extractors or "
                        "metrics first (repeatable; `train` also records it in the run config)")


def add_threads(p: argparse.ArgumentParser) -> None:
    """``--threads``, which every command takes."""
    p.add_argument("--threads", type=_positive_int, default=None,
                   help=f"CPU threads for this process (default: ${THREADS_ENV}, else the CPUs Slurm gave the "
                        "job, else every core this process may use)")


# ---- sampling ------------------------------------------------------------------------------------------------

def _add_sampling_args(p: argparse.ArgumentParser, n_default: int) -> None:
    """The sampling protocol options shared by ``sample`` and ``evaluate`` (``SamplingSettings``)."""
    d = SamplingSettings()
    p.add_argument("--sampler", default=d.sampler,
                   help="sampler name (default: the method's recipe, its sampler at its own budget; see `list`)")
    p.add_argument("--steps", type=int, default=d.steps, help="sampler steps (default: the recipe's, or the sampler's)")
    p.add_argument("--sampler-param", action="append", metavar="KEY=VALUE", help="extra sampler parameter")
    p.add_argument("--cfg-scale", type=float, default=d.cfg_scale,
                   help="classifier-free guidance scale (default: %(default)s)")
    p.add_argument("--cfg-interval", type=float, nargs=2, default=DEFAULT_CFG_INTERVAL, metavar=("LOW", "HIGH"),
                   help=f"guide only where LOW < t < HIGH (default: {DEFAULT_CFG_INTERVAL[0]:g} "
                        f"{DEFAULT_CFG_INTERVAL[1]:g}, JiT)")
    p.add_argument("--ema", type=_ema, default=d.ema,
                   help="EMA decay to sample with, or 'none' for raw weights (default: none)")
    p.add_argument("--checkpoint-step", type=int, default=None, metavar="STEP",
                   help="sample from the checkpoint of this training step (kept with keep_every; default: the latest)")
    p.add_argument("-n", type=int, default=n_default, help="number of samples (default: %(default)s)")
    p.add_argument("--seed", type=int, action="append", default=None,
                   help=f"sampling seed: image i draws from (seed, i) alone (default: {d.seed}; evaluate: repeat for "
                        "several disjoint image-seed ranges)")
    p.add_argument("--batch-size", type=int, default=None,
                   help=f"images per sampler call (default: {DEFAULT_BATCH_SIZE}; the images do not depend on it)")
    p.add_argument("--save-samples", default=None, metavar="DEST",
                   help="also write the images for other evaluators: DEST.npz (arr_0 uint8 NHWC, as ADM reads), "
                        "DEST.zip or a folder of PNGs (clean-fid, torch-fidelity, EDM)")
    p.add_argument("--compile", action="store_true",
                   help="sample with the backbone under torch.compile (fused kernels; needs a C compiler on a CPU)")


def _sampling_fields(args: argparse.Namespace) -> dict:
    """The SamplingSettings fields given on the command line."""
    try:
        params = parse_assignments(args.sampler_param, "--sampler-param")
    except OverrideError as err:
        raise ConfigError(str(err)) from None
    return {"sampler": args.sampler, "steps": args.steps, "cfg_scale": args.cfg_scale,
            "cfg_interval": tuple(args.cfg_interval), "ema": args.ema, "n": args.n,
            "seed": args.seed or [SamplingSettings().seed], "sampler_params": params, "batch_size": args.batch_size,
            "compile": args.compile, "checkpoint_step": args.checkpoint_step}


# ---- output files and the results store ---------------------------------------------------------------------

def check_outputs(*checks: tuple) -> None:
    """Refuse, one line and before any work, an output file that cannot be written: each check is
    (file, option[, suffixes]) as ``core.io.check_output_file`` takes it; an empty or None file is skipped."""
    from hdfm_bench.core.io import check_output_file

    for check in checks:
        if check[0]:
            check_output_file(*check)


def _read_store(path: str, use: str):
    """A results store as a frame (``evaluation.store.read_results``); what it had to leave out is printed
    as notes (line numbers), not as a Python warning."""
    from hdfm_bench.evaluation.store import read_results

    df, notes = read_results(path, use)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    return df
