"""The data-task contract shared by every task: :class:`Task`, its :class:`Param` declarations.

A task is a named data set with validated parameters. ``task.load(split)`` returns
``(x, y)``: x a float32 tensor shaped (N, *task.shape) in [-1, 1] and y a long tensor (N,)
of class labels (all zeros when ``task.num_classes == 0``, i.e. unconditional data).
``task.protocol`` says how the evaluation should compare samples with the data (which
feature extractor, which reference split, at which resolution).
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch.utils.data import Dataset

from hdfm_bench.core.values import CoercionError, coerce

from .errors import TaskError
from .pixels import unit_to_u8


def default_data_root() -> Path:
    """Where downloaded/cached data live: ``$HDFM_BENCH_DATA``, else ``~/.cache/hdfm-bench``."""
    env = os.environ.get("HDFM_BENCH_DATA")
    return Path(env).expanduser() if env else Path("~/.cache/hdfm-bench").expanduser()


@dataclasses.dataclass(frozen=True)
class Param:
    """One task parameter: its type (int, bool, str or Path), default and documentation.

    ``required`` parameters have no default; ``choices`` restricts the allowed values;
    ``minimum`` bounds ints from below. A Path-typed parameter may default to None.
    """

    kind: type
    default: Any = None
    doc: str = ""
    required: bool = False
    choices: tuple[Any, ...] | None = None
    minimum: int | None = None


class MemoryDataset(Dataset):
    """Rows of in-memory tensors (the small tasks: MNIST, digits, toy, CIFAR-10)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        return self.x[i], self.y[i]


class Task:
    """Base class of the registered tasks.

    Subclasses set the class attributes ``name``, ``summary`` and ``params`` and implement
    :meth:`_load` (returning uint8 or float data) plus the ``shape`` / ``num_classes`` /
    ``splits`` / ``protocol`` properties when these depend on the parameters.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    params: ClassVar[dict[str, Param]] = {}

    def __init__(self, *, check_data: bool = True, **params: Any) -> None:
        resolved: dict[str, Any] = {}
        for key in params:
            if key not in self.params:
                known = ", ".join(self.params) or "none"
                raise TaskError(f"task '{self.name}' has no parameter '{key}'; parameters: {known}")
        for key, spec in self.params.items():
            if key not in params or params[key] is None:
                if spec.required:
                    raise TaskError(f"task '{self.name}' needs the parameter '{key}' ({spec.doc})")
                resolved[key] = spec.default
                continue
            value = params[key]
            try:
                value = coerce(value, spec.kind)
            except CoercionError:
                raise TaskError(f"task '{self.name}': parameter '{key}' must be {spec.kind.__name__}, "
                                f"got {value!r}") from None
            if spec.choices is not None and value not in spec.choices:
                raise TaskError(f"task '{self.name}': unknown {key} '{value}'; known: "
                                f"{', '.join(map(str, spec.choices))}")
            if spec.minimum is not None and value < spec.minimum:
                raise TaskError(f"task '{self.name}': parameter '{key}' must be >= {spec.minimum}, got {value}")
            resolved[key] = value
        self.config: dict[str, Any] = resolved
        self._cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.data_checked = check_data
        self._setup() if check_data else self._declare()

    # ---- to override -----------------------------------------------------------------------
    def _setup(self) -> None:
        """Check the resolved parameters / paths at construction (cheap; no data loading)."""

    def _declare(self) -> None:
        """``check_data=False`` (a dry run on a machine without the data): set what ``shape`` and
        ``num_classes`` need from the parameters alone, touching no file."""

    def _load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(x in [-1, 1] float32, y long) for one valid split."""
        raise NotImplementedError

    shape: tuple[int, ...] = ()
    num_classes: int = 0
    splits: tuple[str, ...] = ("train", "test")
    #: True when training should stream the data (``dataset``) instead of holding it in memory
    streaming: ClassVar[bool] = False

    @property
    def protocol(self) -> dict[str, Any]:
        raise NotImplementedError

    # ---- the contract ----------------------------------------------------------------------
    @property
    def is_image(self) -> bool:
        return len(self.shape) == 3

    def _check_split(self, split: str) -> None:
        if not self.data_checked:
            raise TaskError(f"task '{self.name}' was declared without its data (check_data=False); it cannot load")
        if split not in self.splits:
            raise TaskError(f"task '{self.name}' has no split '{split}'; splits: {', '.join(self.splits)}")

    def dataset(self, split: str = "train") -> Dataset:
        """A ``torch.utils.data.Dataset`` of (x, y) items: the in-memory split unless the task streams."""
        return MemoryDataset(*self.load(split))

    def load(self, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
        """The whole split in memory: x float32 (N, *shape) in [-1, 1], y long (N,).

        The result is cached on the task; callers must not modify it in place.
        """
        self._check_split(split)
        if split not in self._cache:
            x, y = self._load(split)
            self._cache[split] = (x, y)
        return self._cache[split]

    def to_uint8(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] (N, C, H, W) -> uint8 0..255 (the inverse of the [-1, 1] mapping)."""
        if not self.is_image:
            raise TaskError(f"task '{self.name}' holds vectors of shape {self.shape}, not images")
        return unit_to_u8(x)

    @property
    def augments(self) -> bool:
        """True when training flips images (the ``hflip`` parameter of the image tasks)."""
        return bool(self.config.get("hflip", False))

    def augment(self, x: torch.Tensor, u: torch.Tensor | None = None) -> torch.Tensor:
        """Training-time augmentation of a batch, given one uniform draw per image (the trainer draws them,
        so a batch is a function of its indices and the trainer's generator): with ``hflip`` each image
        with u < 1/2 is flipped horizontally; the identity otherwise."""
        if not self.augments:
            return x
        flip = (u.to(x.device) < 0.5).view(-1, *([1] * (x.ndim - 1)))
        return torch.where(flip, x.flip(-1), x)

    def describe(self) -> dict[str, Any]:
        """The resolved parameters plus shape/classes/splits/protocol (JSON-serialisable)."""
        return {
            "task": self.name,
            "params": dict(self.config),
            "shape": list(self.shape),
            "num_classes": int(self.num_classes),
            "splits": list(self.splits),
            "protocol": dict(self.protocol),
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{type(self).__name__}({args})"


__all__ = ["MemoryDataset", "Param", "Task", "default_data_root"]
