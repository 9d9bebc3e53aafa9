"""``torch.utils.data`` datasets of the tasks: in memory, or read lazily from files or a zip.

Items are ``(x, y)``: x a float32 tensor in [-1, 1] shaped like the task, y a long label (0 for
unconditional data). The streaming datasets decode one image per item, in the DataLoader's worker
processes; nothing about an item is random (augmentations are drawn by the trainer), so a batch is
a function of its indices alone.
"""
from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from hdfm_bench.core.messages import one_line

from .contract import MemoryDataset, Param, Task
from .errors import TaskError
from .pixels import u8_to_unit


def square(im: Image.Image, resolution: int) -> Image.Image:
    """Centre-crop to a square, then resize (bicubic, antialiased) to resolution × resolution."""
    w, h = im.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    im = im.crop((left, top, left + s, top + s))
    return im if s == resolution else im.resize((resolution, resolution), Image.Resampling.BICUBIC,
                                                reducing_gap=None)


def decode_square(data: bytes | str | os.PathLike, resolution: int, name: str) -> np.ndarray:
    """An image as (3, R, R) uint8: RGB, then :func:`square`.

    The one image transform of the image tasks and of ``hdfm-bench prepare``: a folder streamed
    on the fly and the zip prepared from it give the same arrays."""
    try:
        with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as im:
            arr = np.array(square(im.convert("RGB"), resolution), dtype=np.uint8)  # writable: torch shares it
    except Exception as err:
        raise TaskError(f"cannot read image {name}: {one_line(err)}") from None
    return arr.transpose(2, 0, 1)


class _ImageDataset(Dataset):
    """Items (x in [-1, 1], label) from :meth:`read_u8`, the decoded (3, R, R) uint8 image i."""

    labels: torch.Tensor

    def read_u8(self, i: int) -> np.ndarray:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return u8_to_unit(self.read_u8(i)), self.labels[i]


class FileDataset(_ImageDataset):
    """Image files read when asked for (an image folder streamed)."""

    def __init__(self, files: Sequence[tuple[Path, int]], resolution: int) -> None:
        self.paths = [str(p) for p, _ in files]
        self.labels = torch.as_tensor([label for _, label in files], dtype=torch.long)
        self.resolution = resolution

    def read_u8(self, i: int) -> np.ndarray:
        return decode_square(self.paths[i], self.resolution, self.paths[i])


class ZipDataset(_ImageDataset):
    """PNG members of a zip read when asked for; each worker process opens the zip once."""

    def __init__(self, path: Path, names: Sequence[str], labels: Sequence[int], resolution: int) -> None:
        self.path, self.names, self.resolution = str(path), list(names), resolution
        self.labels = torch.as_tensor(list(labels), dtype=torch.long)
        self._zip: zipfile.ZipFile | None = None
        self._pid = -1

    def __getstate__(self):  # an open zip does not cross into worker processes
        state = dict(self.__dict__)
        state["_zip"], state["_pid"] = None, -1
        return state

    def read_u8(self, i: int) -> np.ndarray:
        if self._zip is None or self._pid != os.getpid():
            self._zip, self._pid = zipfile.ZipFile(self.path), os.getpid()
        name = self.names[i]
        try:
            data = self._zip.read(name)
        except (KeyError, zipfile.BadZipFile, OSError) as err:
            raise TaskError(f"cannot read {name} from {self.path}: {one_line(err)}") from None
        return decode_square(data, self.resolution, f"{self.path}:{name}")


class StreamedImageTask(Task):
    """Base of the streamed image tasks (folders, zips): RGB squares at ``resolution``, optional flips,
    compared with the standard FID Inception. Subclasses provide :meth:`dataset` and the splits."""

    streaming = True
    params = {
        "resolution": Param(int, 64, "side of the square images after crop + resize", minimum=1),
        "hflip": Param(bool, False, "random horizontal flips as a training-time augmentation"),
    }

    @property
    def shape(self) -> tuple[int, ...]:  # type: ignore[override]
        r = self.config["resolution"]
        return (3, r, r)

    @property
    def protocol(self) -> dict[str, Any]:
        return {"extractor": "inception-offline", "reference_split": "train", "resolution": self.config["resolution"]}

    def dataset(self, split: str = "train") -> _ImageDataset:
        raise NotImplementedError

    def _load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole split decoded (as uint8 until the end): the evaluation's reference, small data."""
        ds = self.dataset(split)
        r = self.config["resolution"]
        u8 = np.empty((len(ds), 3, r, r), dtype=np.uint8)
        for i in range(len(ds)):
            u8[i] = ds.read_u8(i)
        return u8_to_unit(u8), ds.labels.clone()


__all__ = ["MemoryDataset", "FileDataset", "ZipDataset", "StreamedImageTask", "decode_square", "square"]
