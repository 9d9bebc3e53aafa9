"""``hdfm-bench prepare``: an image folder → an EDM-style dataset zip, ready to stream.

Each image of a split is decoded, centre-cropped and resized exactly as the ``imagefolder`` task
does (``datasets.decode_square``) and stored losslessly as PNG, so streaming the zip and streaming
the folder give the same batches. Labels come from the class folders (``dataset.json``). Decoding
runs in worker processes; the zip is written to a temporary file and renamed when complete. A
corrupt image is named and either skipped or, with ``on_error="fail"``, aborts with nothing
written.
"""
from __future__ import annotations

import io
import json
import multiprocessing as mp
import os
import zipfile
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from hdfm_bench.core.io import atomic_path
from hdfm_bench.core.limits import check_image_side, check_workers

from .datasets import decode_square
from .errors import TaskError
from .imagefolder import ImageFolderTask

ON_ERROR = ("fail", "skip")


def _encode(item: tuple[str, int]) -> tuple[bytes | None, str]:
    path, resolution = item
    try:
        arr = decode_square(path, resolution, path)
    except TaskError as err:
        return None, str(err)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr.transpose(1, 2, 0))).save(buf, format="PNG", compress_level=6)
    return buf.getvalue(), ""


def prepare_zip(source: str | os.PathLike, dest: str | os.PathLike, resolution: int, *, split: str = "train",
                workers: int | None = None, on_error: str = "fail", progress: bool = False) -> dict[str, Any]:
    """Write split ``split`` of the image folder ``source`` into the zip ``dest``; returns a summary."""
    dest = Path(dest)
    if dest.suffix != ".zip":
        raise TaskError(f"prepare: the destination must be a .zip file, got {dest}")
    if on_error not in ON_ERROR:
        raise TaskError(f"prepare: on_error must be one of {', '.join(ON_ERROR)}, got '{on_error}'")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise TaskError(f"prepare: --workers must be an integer >= 1, got {workers!r}")
    workers = workers or max(1, min(len(os.sched_getaffinity(0)), 8))
    try:  # bounded by what the machine holds, before anything is read or written
        check_workers(workers)
        check_image_side(resolution, workers)
    except ValueError as err:
        raise TaskError(f"prepare: {err}") from None
    task = ImageFolderTask(root=source, resolution=resolution)
    if split not in task.splits:
        raise TaskError(f"prepare: {source} has no split '{split}'; splits: {', '.join(task.splits)}")
    files = task.files(split)
    if dest.is_dir():
        raise TaskError(f"prepare: the destination {dest} is an existing folder; name a .zip file")
    items = [(str(p), resolution) for p, _ in files]
    labels, skipped = [], []
    pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"))
    with atomic_path(dest) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf, \
            tqdm(total=len(items), desc=f"prepare {split}", unit="img", disable=not progress) as bar:
        try:
            for k, (data, error) in enumerate(pool.map(_encode, items, chunksize=16)):
                bar.update(1)
                if data is None:
                    if on_error == "fail":
                        raise TaskError(f"prepare: {error}; nothing was written (--on-error skip leaves it out)")
                    skipped.append(error)
                    continue
                name = f"{len(labels):08d}.png"
                zf.writestr(name, data)
                labels.append([name, files[k][1]])
        except BrokenProcessPool:  # a worker was killed (out of memory?): fail now, never wait for it
            raise TaskError(f"prepare: a decoding worker died (killed, or out of memory at --resolution "
                            f"{resolution}); nothing was written") from None
        finally:  # on any exit (an error, Ctrl-C): drop the queued images instead of decoding them all
            pool.shutdown(wait=False, cancel_futures=True)
        if not labels:
            raise TaskError(f"prepare: no image of {source} could be read")
        zf.writestr("dataset.json", json.dumps({"labels": labels if task.num_classes else None,
                                                "classes": task.classes, "resolution": resolution,
                                                "source": str(source), "split": split}))
    return {"path": dest, "images": len(labels), "classes": task.num_classes, "skipped": skipped}


__all__ = ["prepare_zip", "ON_ERROR"]
