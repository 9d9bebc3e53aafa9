"""``hdfm-bench reference``: the statistics (and optionally the features) of a task split or of a
folder / zip of images, in the format ``evaluate --reference`` and other evaluators read."""
from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from hdfm_bench.core.hashing import file_sha256
from hdfm_bench.core.io import check_output_file
from hdfm_bench.tasks import TASKS, get_task

from .metrics.errors import MetricError
from .metrics.features import Extractor, Features, check_images
from .metrics.reference import write_statistics

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def _folder_images(source: Path) -> tuple[int, Iterator[tuple[str, bytes]]]:
    """(count, iterator of (name, encoded bytes)) of the images in a folder or a zip, sorted by name."""
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        return len(files), ((str(p.relative_to(source)), p.read_bytes()) for p in files)
    if source.suffix == ".zip" and source.is_file():
        zf = zipfile.ZipFile(source)
        names = sorted(n for n in zf.namelist() if Path(n).suffix.lower() in IMAGE_SUFFIXES)
        return len(names), ((n, zf.read(n)) for n in names)
    raise MetricError(f"{source} is neither a task ({', '.join(TASKS)}), a folder of images nor a .zip of images")


def _decode(items: Iterator[tuple[str, bytes]], batch_size: int) -> Iterator[torch.Tensor]:
    """uint8 (B, C, H, W) batches; every image must share the first one's size and channels."""
    first, batch = None, []
    for name, data in items:
        try:
            img = Image.open(io.BytesIO(data))
            img.load()
        except (UnidentifiedImageError, OSError) as err:
            raise MetricError(f"cannot read image {name}: {' '.join(str(err).split())}") from None
        mode = "L" if img.mode in ("L", "1", "I;16", "I") else "RGB"
        arr = np.asarray(img.convert(mode), dtype=np.uint8)
        arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
        if first is None:
            first = arr.shape
        elif arr.shape != first:
            raise MetricError(f"image {name} is {arr.shape} (C, H, W), the first image was {first}: "
                              "a reference folder must hold one resolution")
        batch.append(torch.from_numpy(np.array(arr, copy=True)))
        if len(batch) == batch_size:
            yield torch.stack(batch)
            batch = []
    if batch:
        yield torch.stack(batch)


def reference_statistics(source: str | os.PathLike, out: str | os.PathLike, *, split: str = "test",
                         extractor: str = "inception-offline", with_features: bool = False, batch_size: int = 100,
                         progress: bool = False) -> dict[str, Any]:
    """Write the statistics of ``source`` (a task name, a folder or a .zip of images) under ``extractor``."""
    out = Path(out)
    if out.suffix != ".npz":
        raise MetricError(f"--out must name an .npz file, got {out}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise MetricError(f"--batch-size must be an integer >= 1, got {batch_size!r}")
    check_output_file(out, "--out")
    ext = Extractor(extractor)  # an unknown extractor fails here, before any image is read
    text = os.fspath(source)
    if text in TASKS:
        task = get_task(text)
        if split not in task.splits:
            raise MetricError(f"task '{text}' has no split '{split}'; splits: {', '.join(task.splits)}")
        x, _ = task.load(split)
        images = task.to_uint8(x)
        count, batches = len(images), (images[i:i + batch_size] for i in range(0, len(images), batch_size))
        name = f"{text}:{split}"
    else:
        count, items = _folder_images(Path(text))
        if count < 2:
            raise MetricError(f"{text} holds {count} image(s); at least 2 are needed")
        batches, name = _decode(items, batch_size), text
    feats, shape = Features(keep=with_features), None
    with tqdm(total=count, desc=f"reference features ({extractor})", unit="img", disable=not progress) as bar:
        for b in batches:
            b = check_images(b, name, minimum=1)
            if shape is None:
                shape = tuple(b.shape[1:])
                ext.check_shape(shape, name)
            feats.add(ext.features(b, batch_size))
            bar.update(len(b))
    path = write_statistics(out, feats, extractor=ext, resolution=shape, source=name, with_features=with_features)
    return {"path": path, "n": feats.n, "dim": ext.info["features"], "extractor": extractor,
            "extractor_hash": ext.hash, "sha256": file_sha256(path)}


__all__ = ["reference_statistics"]
