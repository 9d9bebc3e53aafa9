"""References of a metric: a task split, a set of images, or a statistics file.

* ``"task:split"`` — the split's features under an extractor, computed once and cached under
  ``<data root>/reference/`` by a content hash of (task, parameters, split, n, extractor, its
  weights hash, the images' bytes): the ``reference_hash``.
* a statistics file ``*.npz`` in the format of pytorch-fid, EDM and ADM-style evaluations:
  ``mu`` (D,) and ``sigma`` (D, D), optionally ``features`` (N, D) (then KID and precision/recall
  can run too) and this project's metadata (``extractor``, ``extractor_hash``, ``resolution``,
  ``n``, ``source``), checked when present. Its hash is the SHA-256 of the file.

:func:`write_statistics` writes that format (what ``hdfm-bench reference`` produces).
"""
from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hdfm_bench.core.hashing import KEY_DIGITS, arrays_sha256, file_sha256, short_hash
from hdfm_bench.core.io import locked, write_with
from hdfm_bench.tasks import Task, default_data_root, get_task

from .errors import MetricError
from .features import Extractor, Features, check_images

#: metadata keys this project writes into statistics files (besides mu, sigma, features)
META_KEYS = ("extractor", "extractor_hash", "resolution", "n", "source")


class Reference:
    """What generated sets are compared with: features and/or FID statistics, a name and a hash."""

    def __init__(self, name: str, hash: str, n: int, *, features: torch.Tensor | None = None,
                 stats: dict[str, np.ndarray] | None = None, image_shape: tuple | None = None,
                 sha256: str | None = None) -> None:
        self.name, self.hash, self.n = name, hash, n
        self.features, self._stats, self.image_shape, self.sha256 = features, stats, image_shape, sha256

    def statistics(self) -> dict[str, np.ndarray]:
        if self._stats is None:
            f = Features(keep=True)
            f.add(self.features)
            self._stats = f.statistics()
        return self._stats

    def check_images(self, shape: tuple) -> None:
        """Generated images of (C, H, W) ``shape`` may be compared with this reference."""
        if self.image_shape is not None and tuple(shape) != tuple(self.image_shape):
            raise MetricError(f"the reference {self.name} holds images {tuple(self.image_shape)}, the generated "
                              f"images are {tuple(shape)}: another resolution")

    # ---- construction ----
    @classmethod
    def from_images(cls, images: torch.Tensor, extractor: Extractor, batch_size: int = 500) -> Reference:
        images = check_images(images, "reference")
        extractor.check_shape(images.shape[1:], "the reference")
        return cls("images", arrays_sha256(images)[:KEY_DIGITS], len(images),
                   features=extractor.features(images, batch_size), image_shape=tuple(images.shape[1:]))

    @classmethod
    def load(cls, spec: str | os.PathLike, extractor: Extractor, *, n: int | None = None, batch_size: int = 500,
             root: str | os.PathLike | None = None) -> Reference:
        """``"task:split"`` or a statistics file (``.npz``)."""
        text = os.fspath(spec)
        if text.endswith(".npz") or Path(text).is_file():
            if n is not None:
                raise MetricError(f"a statistics file ({text}) has a fixed n; reference_n applies to task splits")
            return cls.from_file(text, extractor)
        task, sep, split = text.partition(":")
        if not sep or not task or not split:
            raise MetricError(f"a reference is 'task:split' (e.g. 'mnist:test') or a statistics file .npz, "
                              f"got '{text}'")
        return cls.from_task(task, split, extractor, n=n, batch_size=batch_size, root=root)

    @classmethod
    def from_task(cls, task: str | Task, split: str, extractor: Extractor, *, n: int | None = None,
                  batch_size: int = 500, root: str | os.PathLike | None = None) -> Reference:
        """The features of a task's split: ``task`` a name (its default parameters) or a task built with
        its own parameters (an evaluation passes its run's task, so a run is measured against its own data;
        the parameters and the data's hash are part of the reference's identity)."""
        task_name = task if isinstance(task, str) else task.name
        try:
            task = get_task(task) if isinstance(task, str) else task
            if not task.is_image:
                raise MetricError(f"task '{task_name}' holds vectors, not images")
            x, _ = task.load(split)
            x = task.to_uint8(x)
        except ValueError as err:
            raise MetricError(str(err)) from None
        if n is not None:
            if not 2 <= n <= len(x):
                raise MetricError(f"reference n={n} must be between 2 and {len(x)} (the size of {task_name}:{split})")
            x = x[:n]
        extractor.check_shape(x.shape[1:], f"the reference {task_name}:{split}")
        params = {k: v for k, v in task.config.items() if k not in ("root", "download")}
        ident = {"task": task_name, "params": params, "split": split, "n": n, "extractor": extractor.name,
                 "extractor_hash": extractor.hash, "data": arrays_sha256(x)}
        key = short_hash(ident)
        path = (Path(root).expanduser() if root else default_data_root()) / "reference" / \
            f"{task_name}-{split}-{extractor.name}-{key}.pt"
        with locked(path.with_name(path.name + ".lock")):  # concurrent jobs compute it once, the others wait
            if path.is_file():
                feats = torch.load(path, map_location="cpu", weights_only=True)["features"]
            else:
                feats = extractor.features(x, batch_size)
                write_with(path, lambda p: torch.save({"features": feats, "meta": json.dumps(ident)}, p))
        return cls(f"{task_name}:{split}", key, len(x), features=feats, image_shape=tuple(x.shape[1:]))

    @classmethod
    def from_file(cls, path: str | os.PathLike, extractor: Extractor) -> Reference:
        data = load_statistics(path)
        dim = extractor.info["features"]
        if data["mu"].shape[0] != dim:
            raise MetricError(f"{path} holds {data['mu'].shape[0]}-d statistics but extractor '{extractor.name}' "
                              f"gives {dim}-d features: computed with another extractor")
        meta = data["meta"]
        if meta.get("extractor") not in (None, extractor.name):
            raise MetricError(f"{path} was computed with extractor '{meta['extractor']}', not '{extractor.name}'")
        if meta.get("extractor_hash") not in (None, extractor.hash):
            raise MetricError(f"{path} was computed with other weights of '{extractor.name}' "
                              f"({meta['extractor_hash']}, here {extractor.hash})")
        sha = file_sha256(path)
        shape = tuple(int(v) for v in meta["resolution"]) if "resolution" in meta else None
        n = int(meta["n"]) if "n" in meta else (len(data["features"]) if data["features"] is not None else 0)
        feats = None if data["features"] is None else torch.from_numpy(data["features"])
        return cls(Path(path).name, sha[:KEY_DIGITS], n, features=feats,
                   stats={"mu": data["mu"], "sigma": data["sigma"]}, image_shape=shape, sha256=sha)


def load_statistics(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a statistics file: {"mu", "sigma", "features" (or None), "meta"}; every
    problem is one MetricError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise MetricError(f"reference statistics file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as err:
        why = " ".join(str(err).split()) or type(err).__name__
        if "pickle" in why:  # numpy would suggest unpickling it (allow_pickle=True): never
            why = "not an .npz of plain arrays"
        raise MetricError(f"cannot read reference statistics {path}: {why}") from None
    if "mu" not in arrays or "sigma" not in arrays:
        raise MetricError(f"{path} has no 'mu' and 'sigma' arrays (keys: {', '.join(sorted(arrays)) or 'none'}): "
                          "not a statistics file")
    mu, sigma = arrays["mu"], arrays["sigma"]
    if mu.ndim != 1 or sigma.ndim != 2 or sigma.shape != (len(mu), len(mu)):
        raise MetricError(f"{path}: mu must be (D,) and sigma (D, D), got {mu.shape} and {sigma.shape}")
    if not (np.issubdtype(mu.dtype, np.floating) and np.issubdtype(sigma.dtype, np.floating)):
        raise MetricError(f"{path}: mu and sigma must be floating point, got {mu.dtype} and {sigma.dtype}")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise MetricError(f"{path}: mu or sigma contains NaN or Inf")
    feats = arrays.get("features")
    if feats is not None and (feats.ndim != 2 or feats.shape[1] != len(mu) or not np.isfinite(feats).all()):
        raise MetricError(f"{path}: features must be a finite (N, {len(mu)}) array, got {feats.shape}")
    meta = {}
    for key in META_KEYS:
        if key in arrays:
            v = arrays[key]
            meta[key] = v.tolist() if v.ndim else v.item()
    return {"mu": mu.astype(np.float64), "sigma": sigma.astype(np.float64),
            "features": None if feats is None else feats.astype(np.float64), "meta": meta}


def write_statistics(dest: str | os.PathLike, features: Features, *, extractor: Extractor, resolution: Iterable[int],
                     source: str, with_features: bool = False) -> Path:
    """Write ``mu`` / ``sigma`` (float64; np.cov's unbiased covariance) — and the features when asked —
    with this project's metadata, atomically."""
    stats = features.statistics()
    arrays: dict[str, Any] = {"mu": stats["mu"], "sigma": stats["sigma"], "extractor": np.array(extractor.name),
                              "extractor_hash": np.array(extractor.hash),
                              "resolution": np.asarray(list(resolution), dtype=np.int64), "n": np.array(features.n),
                              "source": np.array(source)}
    if with_features:
        arrays["features"] = features.matrix.numpy()

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    return write_with(dest, write)


__all__ = ["Reference", "load_statistics", "write_statistics", "META_KEYS"]
