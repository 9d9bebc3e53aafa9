"""``hdfm-bench prepare``: convert an image folder into a dataset zip (PNGs + dataset.json labels)

Decode every image of a split of an image folder (ImageNet / AFHQ / FFHQ layout), centre-crop and resize it
exactly as the imagefolder task does, and write an EDM-style zip (one PNG per image, labels from the class
folders in dataset.json) that the imagezip task streams; parallel workers, atomic output. Streaming the folder
or the zip gives identical batches.
"""
from __future__ import annotations

import argparse
import sys

from .options import check_outputs, command_help
from .reference import cmd_reference


def add_parser(sub) -> None:
    p = sub.add_parser("prepare", **command_help(__doc__))
    p.add_argument("source", help="the image folder (class subfolders, optionally under train/ and val/)")
    p.add_argument("dest", help="the .zip to write (replaced only when complete)")
    p.add_argument("--resolution", type=int, default=64, help="side of the square images (default: %(default)s)")
    p.add_argument("--split", default="train", help="which split of the folder (default: %(default)s)")
    p.add_argument("--workers", type=int, default=None, help="decoding processes (default: the CPUs, at most 8)")
    p.add_argument("--on-error", default="fail", metavar="fail|skip",
                   help="an unreadable image: fail (write nothing) or skip it, naming it (default: %(default)s)")
    p.add_argument("--reference-stats", metavar="OUT.npz", default=None,
                   help="also write the reference statistics of the prepared images (see `reference`)")
    p.add_argument("--extractor", default="inception-offline", help="for --reference-stats (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=100, help="for --reference-stats: images per extractor call "
                                                               "(default: %(default)s)")
    p.set_defaults(func=cmd_prepare)


def _check_reference_options(args: argparse.Namespace) -> None:
    """--reference-stats and its extractor and batch size, checked before any image is encoded."""
    from hdfm_bench.evaluation.metrics.extractors import get_extractor_info

    check_outputs((args.reference_stats, "--reference-stats", (".npz",)))
    want = get_extractor_info(args.extractor)["input_size"]
    made = (3, args.resolution, args.resolution)  # prepare writes RGB images of this side
    if want is not None and tuple(want) != made:
        raise ValueError(f"--extractor {args.extractor} takes images {tuple(want)}, but the prepared images are "
                         f"{made}: choose an extractor for them (e.g. inception-offline)")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")


def cmd_prepare(args: argparse.Namespace) -> int:
    """An image folder → an EDM-style dataset zip (and optionally its reference statistics)."""
    from hdfm_bench.tasks.prepare import prepare_zip

    check_outputs((args.dest, "DEST", (".zip",)))
    if args.reference_stats:
        _check_reference_options(args)
    out = prepare_zip(args.source, args.dest, args.resolution, split=args.split, workers=args.workers,
                      on_error=args.on_error, progress=True)
    for error in out["skipped"]:
        print(f"hdfm-bench: skipped: {error}", file=sys.stderr)
    skipped = f", {len(out['skipped'])} unreadable image(s) skipped" if out["skipped"] else ""
    print(f"wrote {out['path']}: {out['images']} images at {args.resolution}x{args.resolution}, "
          f"{out['classes']} classes{skipped}")
    if args.reference_stats:
        args.source, args.out, args.features = out["path"], args.reference_stats, False
        return cmd_reference(args)
    return 0
