"""Image folders in the ImageNet / AFHQ / FFHQ style.

Layout of ``root`` (required):

* optional split subfolders: ``root/train`` plus ``root/val`` or ``root/test``; without them
  the whole of ``root`` is the single split ``"train"``;
* inside a split, either class subfolders (labels = the sorted subfolder names of the train
  split, images found recursively inside each) or images directly (``num_classes`` 0, labels
  zeros). Mixing loose images with class subfolders is an error.

Images (.png .jpg .jpeg .bmp .gif .webp .tif .tiff, any case) are converted to RGB, centre-cropped
to a square and resized (bicubic, antialiased) to ``resolution`` × ``resolution``, then mapped to
[-1, 1] as u / 127.5 − 1. Training streams the images (:meth:`ImageFolderTask.dataset`: one file
decoded per item, in DataLoader workers), so memory does not grow with the folder;
:meth:`ImageFolderTask.load` decodes a whole split into memory (the evaluation's reference split,
small folders).

``hflip`` does not enlarge the data: it turns on :meth:`ImageFolderTask.augment`, a training-time
augmentation that flips a random half of a batch horizontally (the identity when off).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .contract import Param
from .datasets import FileDataset, StreamedImageTask
from .errors import TaskError
from .registry import register_task

EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
EVAL_SPLITS = ("val", "test")


def _is_image(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in EXTENSIONS and not p.name.startswith(".")


def _images_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if _is_image(p))


@register_task
class ImageFolderTask(StreamedImageTask):
    """A folder of images (optionally with split and class subfolders), cropped and resized."""

    name = "imagefolder"
    summary = "ImageNet/AFHQ/FFHQ-style image folders, centre-cropped and resized, streamed from disk"
    params = {
        "root": Param(Path, None, "the image folder", required=True),
        **StreamedImageTask.params,
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
        """The class folders of the train split; one without images is an error naming it (dropping it
        silently would train a model with a class fewer)."""
        subdirs = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        classes = [d for d in subdirs if _images_under(folder / d)]
        empty = [d for d in subdirs if d not in classes]
        if classes and empty:
            raise TaskError(f"imagefolder: class folder {folder / empty[0]} holds no images"
                            + (f" (and {len(empty) - 1} more)" if len(empty) > 1 else "")
                            + "; add images or remove it")
        return classes

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
                raise TaskError(f"imagefolder: the classes differ between splits: class folder {sub} is not "
                                f"among the {len(self.classes)} train classes")
            label = self.classes.index(sub.name)
            files.extend((p, label) for p in images)
        return files

    @property
    def num_classes(self) -> int:  # type: ignore[override]
        return len(self.classes)

    @property
    def splits(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(self.split_dirs)

    def files(self, split: str) -> list[tuple[Path, int]]:
        """(path, label) of every image of a split, in a fixed (sorted) order."""
        return list(self._files[split])

    def dataset(self, split: str = "train") -> FileDataset:
        """The split streamed from its files (one decode per item)."""
        self._check_split(split)
        return FileDataset(self._files[split], self.config["resolution"])

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["classes"] = list(self.classes)
        d["sizes"] = {s: len(f) for s, f in self._files.items()}
        return d
