"""EDM-style dataset zips: one PNG per image and an optional ``dataset.json`` of labels.

``dataset.json`` holds ``{"labels": [[name, label], ...]}`` (or ``null`` for unlabelled data), as
EDM's dataset tool writes it; ``hdfm-bench prepare`` makes such a zip from an image folder. The
images are streamed (decoded per item in DataLoader workers); a second zip can hold an evaluation
split (``val``). Images in a zip made by ``prepare`` are already square at ``resolution``; other
zips are centre-cropped and resized on the fly like an image folder.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

from hdfm_bench.core.messages import one_line

from .contract import Param
from .datasets import StreamedImageTask, ZipDataset
from .errors import TaskError
from .registry import register_task

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def read_index(path: Path) -> tuple[list[str], list[int] | None]:
    """(image member names in order, labels or None) of a dataset zip."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = sorted(n for n in zf.namelist() if Path(n).suffix.lower() in IMAGE_SUFFIXES)
            meta = json.loads(zf.read("dataset.json")) if "dataset.json" in zf.namelist() else {}
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise TaskError(f"imagezip: cannot read {path}: {one_line(err)}") from None
    if not names:
        raise TaskError(f"imagezip: {path} holds no images")
    pairs = (meta or {}).get("labels")
    if pairs is None:
        return names, None
    labels = {str(n): int(c) for n, c in pairs}
    missing = [n for n in names if n not in labels]
    if missing:
        raise TaskError(f"imagezip: {path}: dataset.json has no label for {missing[0]} "
                        f"({len(missing)} image(s) unlabelled)")
    return names, [labels[n] for n in names]


@register_task
class ImageZipTask(StreamedImageTask):
    """A dataset zip (EDM's format), streamed."""

    name = "imagezip"
    summary = "EDM-style dataset zips (PNGs + dataset.json labels), streamed; made by hdfm-bench prepare"
    params = {
        "root": Param(Path, None, "the training zip", required=True),
        "val": Param(Path, None, "a zip of the evaluation split (optional)"),
        **StreamedImageTask.params,
        "classes": Param(int, 0, "expected number of classes (0 = whatever the labels hold; > 0 needs "
                                 "dataset.json labels)"),
    }

    def _declare(self) -> None:
        self.zips = {"train": Path(self.config["root"])}
        if self.config["val"] is not None:
            self.zips["val"] = Path(self.config["val"])
        self._classes = self.config["classes"]
        self._index: dict[str, tuple[list[str], list[int]]] = {}

    def _setup(self) -> None:
        self._declare()
        for split, path in self.zips.items():
            if not path.is_file():
                raise TaskError(f"imagezip: {path} does not exist")
            names, labels = read_index(path)
            if labels is None and self.config["classes"] > 0:
                raise TaskError(f"imagezip: {path} has no dataset.json labels, but classes="
                                f"{self.config['classes']} asks for class-conditional data")
            self._index[split] = (names, labels or [0] * len(names))
        found = max(self._index["train"][1]) + 1 if any(self._index["train"][1]) else 0
        if self.config["classes"] and found > self.config["classes"]:
            raise TaskError(f"imagezip: {self.zips['train']} has labels up to {found - 1}, "
                            f"more than classes={self.config['classes']}")
        self._classes = self.config["classes"] or found
        for split, (_, labels) in self._index.items():
            if split != "train" and labels and max(labels) >= max(self._classes, 1):
                raise TaskError(f"imagezip: the classes differ between splits: {self.zips[split]} has label "
                                f"{max(labels)}, the train zip {self._classes} classes")

    @property
    def num_classes(self) -> int:  # type: ignore[override]
        return self._classes

    @property
    def splits(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(self.zips)

    def dataset(self, split: str = "train") -> ZipDataset:
        self._check_split(split)
        names, labels = self._index[split]
        return ZipDataset(self.zips[split], names, labels, self.config["resolution"])
