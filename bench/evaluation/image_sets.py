"""Image sets written by any model, read the way the community's evaluators write them (``hdfm-bench score``).

Three formats, told apart by the path:

* ``*.npz`` — ADM's evaluation format: ``arr_0`` uint8 (N, H, W, C), optional labels in ``arr_1`` (ADM)
  or ``labels`` (what ``evaluate --save-samples`` writes);
* ``*.zip`` — one PNG/JPEG per image, in name order, optional EDM ``dataset.json`` labels (EDM, clean-fid,
  torch-fidelity, ``evaluate --save-samples``);
* a folder of such images (searched recursively, in path order), optional ``dataset.json``.

Nothing is ever extracted to disk and nothing is held whole: :meth:`ImageSet.batches` decodes batch by
batch. Before any pixel is decoded the container is checked — member names (no ``..``, no absolute
path), declared sizes (a member larger than its image can be, or a compression ratio no image has, is a
zip bomb), the image header (size and mode: 8-bit grey or RGB) — and every refusal is one line naming
the file. The set's identity is the SHA-256 of its images' pixel SHA-256s in order
(:attr:`ImageSet.sha256`, known after a full pass or from the shards), so the same images give the
same hash in any of the three formats.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np
import torch
from PIL import Image

from hdfm_bench.core.messages import one_line

from .metrics.errors import MetricError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
#: PIL modes accepted as they are: 8-bit grey and 8-bit RGB (16-bit, float, palette or alpha images are refused:
#: converting them silently would change what is measured)
MODES = {"L": 1, "RGB": 3}
#: the largest image side read (a header claiming more is refused before decoding)
MAX_SIDE = 4096
#: the largest compression ratio a member may declare: PNGs of real images compress ≤ ~100:1, an all-black one
#: ~1000:1; a zip bomb ≥ 10^4:1
MAX_RATIO = 2000
#: per-member slack over the raw pixel size (PNG/JPEG headers, metadata)
MEMBER_SLACK = 1 << 20


def _safe_name(name: str, where: str) -> None:
    parts = Path(name).parts
    if name.startswith(("/", "\\")) or ".." in parts or (parts and parts[0].endswith(":")):
        raise MetricError(f"{where}: member '{name}' has an absolute path or '..' in its name; refused (a zip is "
                          "read in memory, but such a name is a sign of a hostile archive)")


def _check_member(info: zipfile.ZipInfo, limit: int, where: str) -> None:
    """Declared sizes of a zip member, checked before it is read."""
    _safe_name(info.filename, where)
    if info.file_size > limit:
        raise MetricError(f"{where}: member '{info.filename}' declares {info.file_size} bytes, more than its "
                          f"images can hold ({limit}); refused as a possible zip bomb")
    if info.compress_size and info.file_size / info.compress_size > MAX_RATIO:
        raise MetricError(f"{where}: member '{info.filename}' declares a compression ratio of "
                          f"{info.file_size / info.compress_size:.0f}:1 (> {MAX_RATIO}:1); refused as a possible "
                          "zip bomb")


def _check_header(im: Image.Image, name: str) -> None:
    w, h = im.size
    if max(w, h) > MAX_SIDE:
        raise MetricError(f"{name}: {w}×{h} pixels, more than {MAX_SIDE} on a side; refused before decoding")
    if im.mode not in MODES:
        raise MetricError(f"{name}: PIL mode '{im.mode}', not 8-bit grey (L) or RGB; write uint8 0..255 "
                          "grey or RGB images")


def header_shape(stream: IO[bytes], name: str) -> tuple[int, int, int]:
    """(C, H, W) of an image file from its header alone (nothing decoded)."""
    try:
        with Image.open(stream) as im:
            _check_header(im, name)
            return MODES[im.mode], im.size[1], im.size[0]
    except MetricError:
        raise
    except Exception as err:  # not an image
        raise MetricError(f"cannot read image {name}: {one_line(err)}") from None


def decode_u8(data: bytes, name: str) -> np.ndarray:
    """One image file's bytes → uint8 (C, H, W), C = 1 (grey) or 3 (RGB); header checked before decoding."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            _check_header(im, name)
            arr = np.asarray(im, dtype=np.uint8)
    except MetricError:
        raise
    except Exception as err:  # truncated or not an image
        raise MetricError(f"cannot read image {name}: {one_line(err)}") from None
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def _labels_from(meta: bytes | None, names: list[str], where: str) -> np.ndarray | None:
    """EDM's ``dataset.json`` labels ({"labels": [[name, label], ...]} or null), in ``names`` order."""
    if meta is None:
        return None
    try:
        pairs = json.loads(meta).get("labels")
        if pairs is None:
            return None
        table = {str(n).replace("\\", "/"): int(c) for n, c in pairs}
    except (ValueError, TypeError, AttributeError) as err:
        raise MetricError(f"{where}: dataset.json is not EDM's {{\"labels\": [[name, label], ...]}}: "
                          f"{one_line(err)}") from None
    missing = [n for n in names if n not in table]
    if missing:
        raise MetricError(f"{where}: dataset.json has no label for {missing[0]} ({len(missing)} image(s) unlabelled)")
    return np.asarray([table[n] for n in names], dtype=np.int64)


def set_sha256(digests: bytes) -> str:
    """The identity of an image set: the SHA-256 of its images' SHA-256s in order (so shards combine)."""
    return hashlib.sha256(digests).hexdigest()


class ImageSet:
    """n uint8 images (C, H, W) of one shape, and optional integer labels, read batch by batch."""

    kind = ""

    def __init__(self, path: Path) -> None:
        self.path, self.n, self.shape = path, 0, (0, 0, 0)
        self.labels: np.ndarray | None = None
        self.sha256: str | None = None
        self.digests = b""

    @staticmethod
    def open(path: str | os.PathLike) -> ImageSet:
        """The reader of ``path``'s format (``.npz``, ``.zip``, else a folder); a missing path is an error."""
        p = Path(path)
        if not p.exists():
            raise MetricError(f"{p}: no such file or folder")
        if p.is_dir():
            return FolderImages(p)
        if p.suffix.lower() == ".npz":
            return NpzImages(p)
        if p.suffix.lower() == ".zip":
            return ZipImages(p)
        raise MetricError(f"{p}: not a folder, an .npz (ADM: arr_0 uint8 NHWC) or a .zip of images")

    def _read(self, start: int, stop: int) -> np.ndarray:
        """Images [start, stop) as uint8 (B, C, H, W)."""
        raise NotImplementedError

    def _set_first(self, first: np.ndarray) -> None:
        self.shape = tuple(int(s) for s in first.shape)

    def _check_labels(self) -> None:
        if self.labels is None:
            return
        if self.labels.ndim != 1 or len(self.labels) != self.n:
            raise MetricError(f"{self.path}: {len(self.labels)} labels for {self.n} images")
        if len(self.labels) and self.labels.min() < 0:
            raise MetricError(f"{self.path}: labels must be class indices >= 0, found {int(self.labels.min())}")

    def batches(self, batch_size: int = 256, start: int = 0,
                stop: int | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor | None, range]]:
        """(uint8 (B, C, H, W), labels or None, indices) of images [start, stop) in order; :attr:`digests`
        holds each image's SHA-256, and :attr:`sha256` is set when a pass over all n images ends."""
        stop = self.n if stop is None else stop
        if not 0 <= start < stop <= self.n:
            raise MetricError(f"image range [{start}, {stop}) is not inside [0, {self.n})")
        self.digests, parts = b"", []
        for lo in range(start, stop, batch_size):
            hi = min(stop, lo + batch_size)
            u8 = np.require(self._read(lo, hi), requirements=["C", "W"])  # torch wants writable
            parts.extend(hashlib.sha256(img.tobytes()).digest() for img in u8)
            labels = None if self.labels is None else torch.from_numpy(self.labels[lo:hi])
            yield torch.from_numpy(u8), labels, range(lo, hi)
        self.digests = b"".join(parts)
        if (start, stop) == (0, self.n):
            self.sha256 = set_sha256(self.digests)

    def stamp(self) -> list:
        """What tells a changed file from the one measured before (shard files are only reused for the same
        images): size and modification time of the file, or of every image of a folder."""
        st = self.path.stat()
        return [st.st_size, st.st_mtime_ns]

    def describe(self) -> dict:
        return {"source": self.path.name, "format": self.kind, "n": self.n, "shape": list(self.shape),
                "labels": self.labels is not None}


class NpzImages(ImageSet):
    """ADM's ``.npz``: ``arr_0`` (N, H, W, C) uint8 streamed from the zip member; ``arr_1``/``labels`` labels."""

    kind = "npz"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        try:
            self.zip = zipfile.ZipFile(path)
            members = {i.filename: i for i in self.zip.infolist()}
        except (zipfile.BadZipFile, OSError) as err:
            raise MetricError(f"cannot read {path} as an .npz: {one_line(err)}") from None
        if "arr_0.npy" not in members:
            raise MetricError(f"{path} has no arr_0 (ADM's images, uint8 N×H×W×C); members: "
                              f"{', '.join(sorted(members)) or 'none'}")
        with self.zip.open(members["arr_0.npy"]) as fh:
            shape, dtype, self.offset = self._header(fh)
        if dtype != np.uint8:
            raise MetricError(f"{path}: arr_0 is {dtype}, not uint8 0..255 (ADM's format); convert with "
                              "np.clip(np.round(x), 0, 255).astype(np.uint8)")
        if len(shape) != 4 or shape[3] not in (1, 3) or max(shape[1:3]) > MAX_SIDE:
            raise MetricError(f"{path}: arr_0 has shape {shape}; expected (N, H, W, C) with C = 1 or 3")
        self.n, self.shape = int(shape[0]), (int(shape[3]), int(shape[1]), int(shape[2]))
        _check_member(members["arr_0.npy"], self.offset + self.n * int(np.prod(self.shape)), str(path))
        label_member = next((m for m in ("arr_1.npy", "labels.npy") if m in members), None)
        if label_member:
            _check_member(members[label_member], 128 + 8 * self.n + MEMBER_SLACK, str(path))
            with self.zip.open(label_member) as fh:
                try:
                    labels = np.lib.format.read_array(fh, allow_pickle=False)
                except ValueError as err:
                    raise MetricError(f"{path}: cannot read {label_member}: {one_line(err)}") from None
            if not np.issubdtype(labels.dtype, np.integer):
                raise MetricError(f"{path}: {label_member} holds {labels.dtype}, not integer class labels")
            self.labels = labels.astype(np.int64)
        self._check_labels()
        self._fh, self._pos = None, 0

    def _header(self, fh) -> tuple[tuple, np.dtype, int]:
        try:
            version = np.lib.format.read_magic(fh)
            read = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
            if version not in read:
                raise ValueError(f".npy format version {version[0]}.{version[1]}")
            shape, fortran, dtype = read[version](fh)
        except (ValueError, OSError) as err:
            raise MetricError(f"{self.path}: arr_0 is not a valid .npy array: {one_line(err)}") from None
        if fortran:
            raise MetricError(f"{self.path}: arr_0 is Fortran-ordered; save a C-ordered array")
        return tuple(shape), dtype, fh.tell()

    def _read(self, start: int, stop: int) -> np.ndarray:
        size = int(np.prod(self.shape))
        if self._fh is None or start != self._pos:  # sequential reads stream the member once
            self._fh = self.zip.open("arr_0.npy")
            self._fh.seek(self.offset + start * size)
        data = self._fh.read((stop - start) * size)
        if len(data) != (stop - start) * size:
            raise MetricError(f"{self.path}: arr_0 ends after {start + len(data) // size} of {self.n} images")
        self._pos = stop
        c, h, w = self.shape
        return np.frombuffer(data, np.uint8).reshape(stop - start, h, w, c).transpose(0, 3, 1, 2)


class _Files(ImageSet):
    """Images as separate files (zip members or a folder's files), in name order."""

    def _finish(self, names: list[str], meta: bytes | None) -> None:
        if not names:
            raise MetricError(f"{self.path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        self.names, self.n = names, len(names)
        self.labels = _labels_from(meta, names, str(self.path))
        self._check_labels()
        self._set_first(decode_u8(self._bytes(0), self._where(0)))
        for i in range(1, self.n):  # every header before any pixel: a bad file fails here, not mid-pass
            with self._stream(i) as fh:
                self._check_like_first(header_shape(fh, self._where(i)), i)

    def _check_like_first(self, shape: tuple, i: int) -> None:
        if tuple(shape) != self.shape:
            raise MetricError(f"{self._where(i)}: {'×'.join(map(str, shape))} (C×H×W), unlike the first "
                              f"image's {'×'.join(map(str, self.shape))}")

    def _bytes(self, i: int) -> bytes:
        raise NotImplementedError

    def _stream(self, i: int) -> IO[bytes]:
        raise NotImplementedError

    def _where(self, i: int) -> str:
        return f"{self.path}:{self.names[i]}"

    def _read(self, start: int, stop: int) -> np.ndarray:
        out = np.empty((stop - start, *self.shape), np.uint8)
        for k, i in enumerate(range(start, stop)):
            img = decode_u8(self._bytes(i), self._where(i))
            self._check_like_first(img.shape, i)
            out[k] = img
        return out


class ZipImages(_Files):
    """A zip of images (read in memory, member by member, never extracted)."""

    kind = "zip"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        try:
            self.zip = zipfile.ZipFile(path)
            infos = self.zip.infolist()
        except (zipfile.BadZipFile, OSError) as err:
            raise MetricError(f"cannot read {path} as a zip: {one_line(err)}") from None
        limit = 3 * MAX_SIDE * MAX_SIDE + MEMBER_SLACK
        for info in infos:
            _check_member(info, limit, str(path))
        names = sorted(i.filename for i in infos if Path(i.filename).suffix.lower() in IMAGE_SUFFIXES)
        meta = self.zip.read("dataset.json") if "dataset.json" in self.zip.namelist() else None
        self._finish(names, meta)

    def _bytes(self, i: int) -> bytes:
        try:
            return self.zip.read(self.names[i])
        except (zipfile.BadZipFile, OSError, EOFError) as err:  # bad CRC, truncated member
            raise MetricError(f"cannot read {self._where(i)}: {one_line(err)}") from None

    def _stream(self, i: int) -> IO[bytes]:
        return self.zip.open(self.names[i])


class FolderImages(_Files):
    """A folder of images, searched recursively; names are paths relative to it."""

    kind = "folder"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        files = sorted(p.relative_to(path).as_posix() for p in path.rglob("*")
                       if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        meta = (path / "dataset.json").read_bytes() if (path / "dataset.json").is_file() else None
        self._finish(files, meta)

    def _bytes(self, i: int) -> bytes:
        try:
            return (self.path / self.names[i]).read_bytes()
        except OSError as err:
            raise MetricError(f"cannot read {self._where(i)}: {one_line(err)}") from None

    def stamp(self) -> list:
        stats = [(self.path / n).stat() for n in self.names]
        return [[n, st.st_size, st.st_mtime_ns] for n, st in zip(self.names, stats)]

    def _stream(self, i: int) -> IO[bytes]:
        try:
            return open(self.path / self.names[i], "rb")
        except OSError as err:
            raise MetricError(f"cannot read {self._where(i)}: {one_line(err)}") from None

    def _where(self, i: int) -> str:
        return str(self.path / self.names[i])


__all__ = ["ImageSet", "set_sha256", "NpzImages", "ZipImages", "FolderImages", "decode_u8", "IMAGE_SUFFIXES",
           "MAX_SIDE", "MAX_RATIO"]
