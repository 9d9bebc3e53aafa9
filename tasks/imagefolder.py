"""Image folders in the ImageNet / AFHQ / FFHQ style.

Layout of ``root`` (required):

* optional split subfolders: ``root/train`` plus ``root/val`` or ``root/test``; without them
  the whole of ``root`` is the single split ``"train"``;
* inside a split, either class subfolders (labels = the sorted subfolder names of the train
  split, images found recursively inside each) or images directly (``num_classes`` 0, labels
  zeros). Mixing loose images with class subfolders is an error.

Images (.png .jpg .jpeg .bmp .gif .webp .tif .tiff, any case) are converted to RGB, centre-cropped
to a square and resized (bicubic, antialiased) to ``resolution`` × ``resolution``, then mapped to
[-1, 1] as u / 127.5 − 1. :meth:`ImageFolderTask.load` decodes the whole split into memory
(kept as uint8 until returned), so this task is meant for modest folders (up to some tens of
thousands of images at 64×64), not full ImageNet.

``hflip`` does not enlarge the data: it turns on :meth:`ImageFolderTask.augment`, a training-time
augmentation that flips a random half of a batch horizontally (the identity when off).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .base import Param, Task, TaskError, one_line, register, u8_to_unit

EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
EVAL_SPLITS = ("val", "test")


def _is_image(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in EXTENSIONS and not p.name.startswith(".")


def _images_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if _is_image(p))


def read_image(path: Path, resolution: int) -> np.ndarray:
    """One image as (3, resolution, resolution) uint8: RGB, centre crop to square, bicubic resize."""
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            w, h = im.size
            s = min(w, h)
            left, top = (w - s) // 2, (h - s) // 2
            im = im.crop((left, top, left + s, top + s))
            if s != resolution:
                im = im.resize((resolution, resolution), Image.Resampling.BICUBIC, reducing_gap=None)
            arr = np.asarray(im, dtype=np.uint8)
    except Exception as err:
        raise TaskError(f"cannot read image {path}: {one_line(err)}") from None
    return arr.transpose(2, 0, 1)


@register
class ImageFolderTask(Task):
    """A folder of images (optionally with split and class subfolders), cropped and resized."""

    name = "imagefolder"
    summary = "ImageNet/AFHQ/FFHQ-style image folders, centre-cropped and resized (in memory)"
    params = {
        "root": Param(Path, None, "the image folder", required=True),
        "resolution": Param(int, 64, "side of the square images after crop + resize", minimum=1),
        "hflip": Param(bool, False, "random horizontal flips as a training-time augmentation"),
        "classes": Param(int, 0, "expected number of class folders (0 = whatever the folder holds); checked "
                                 "when the folder is read, and what a dry run without the data assumes"),
    }

    def _declare(self) -> None:
        self.root = Path(self.config["root"])
        self.split_dirs = {"train": self.root / "train", "val": self.root / "val"}
        self.classes = [str(i) for i in range(self.config["classes"])]

    def _setup(self) -> None:
        self.root = Path(self.config["root"])
        if not self.root.is_dir():
            raise TaskError(f"imagefolder: path {self.root} does not exist or is not a folder")
        split_dirs = {"train": self.root / "train"}
        if split_dirs["train"].is_dir():
            for name in EVAL_SPLITS:
                if (self.root / name).is_dir():
                    split_dirs[name] = self.root / name
        else:
            split_dirs = {"train": self.root}
        self.split_dirs = split_dirs
        self.classes = self._classes(split_dirs["train"])
        if self.config["classes"] and len(self.classes) != self.config["classes"]:
            raise TaskError(f"imagefolder: {split_dirs['train']} holds {len(self.classes)} class folders, "
                            f"expected classes={self.config['classes']}")
        self._files: dict[str, list[tuple[Path, int]]] = {}
        for split, folder in split_dirs.items():
            files = self._scan(folder)
            if not files:
                raise TaskError(f"imagefolder: no images found under {folder}")
            self._files[split] = files

    def _classes(self, folder: Path) -> list[str]:
        subdirs = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        return [d for d in subdirs if _images_under(folder / d)]

    def _scan(self, folder: Path) -> list[tuple[Path, int]]:
        loose = sorted(p for p in folder.iterdir() if _is_image(p))
        if not self.classes:
            return [(p, 0) for p in loose]
        if loose:
            raise TaskError(f"imagefolder: {folder} mixes loose images (e.g. {loose[0].name}) "
                            f"with class subfolders")
        files: list[tuple[Path, int]] = []
        for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
            images = _images_under(sub)
            if not images:
                continue
            if sub.name not in self.classes:
                raise TaskError(f"imagefolder: class folder {sub} is not among the train classes")
            label = self.classes.index(sub.name)
            files.extend((p, label) for p in images)
        return files

    @property
    def shape(self) -> tuple[int, ...]:  # type: ignore[override]
        r = self.config["resolution"]
        return (3, r, r)

    @property
    def num_classes(self) -> int:  # type: ignore[override]
        return len(self.classes)

    @property
    def splits(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(self.split_dirs)

    @property
    def protocol(self) -> dict[str, Any]:
        return {"extractor": "inception", "reference_split": "train", "resolution": self.config["resolution"]}

    def files(self, split: str) -> list[tuple[Path, int]]:
        """(path, label) of every image of a split, in a fixed (sorted) order."""
        return list(self._files[split])

    def _load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        files = self._files[split]
        r = self.config["resolution"]
        u8 = np.empty((len(files), 3, r, r), dtype=np.uint8)
        for i, (path, _) in enumerate(files):
            u8[i] = read_image(path, r)
        labels = torch.as_tensor([label for _, label in files], dtype=torch.long)
        return u8_to_unit(u8), labels

    def augment(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """With ``hflip``: flip a random half (each image with probability 1/2) horizontally."""
        if not self.config["hflip"]:
            return x
        flip = torch.rand(x.shape[0], generator=generator) < 0.5
        flip = flip.to(x.device).view(-1, *([1] * (x.ndim - 1)))
        return torch.where(flip, x.flip(-1), x)

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["classes"] = list(self.classes)
        d["sizes"] = {s: len(f) for s, f in self._files.items()}
        return d
