"""Hashing: one canonical JSON form and one short-digest rule for every identity in the project.

A run id, an evaluation key, a protocol hash, a reference-statistics key and an extractor's
content key are all ``short_hash(obj, digits)``: the SHA-256 of ``canonical_json(obj)``, as
hex, truncated. The truncation lengths are named here; they are part of the identities already
on disk (run folders, stored rows), so they are kept as they were first released.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: digits of a run id's hash (``<task>-<path>-<target>-<10 hex>``)
RUN_ID_DIGITS = 10
#: digits of an evaluation key (one sweep evaluation setting of one run at one checkpoint)
EVAL_KEY_DIGITS = 12
#: digits of every other content key (protocol hash, reference cache, extractor recipe, weights)
KEY_DIGITS = 16


def _default(o: Any) -> Any:
    """numpy scalars and arrays as their Python values, paths as strings, anything else as str."""
    if hasattr(o, "item") and getattr(o, "shape", None) == ():
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, os.PathLike):
        return os.fspath(o)
    return str(o)


def canonical_json(obj: Any) -> str:
    """Sorted keys at every level, ASCII, the json module's default separators.

    Tuples and lists give the same text; numpy numbers give the text of the equal Python number.
    """
    return json.dumps(obj, sort_keys=True, default=_default)


def short_hash(obj: Any, digits: int = KEY_DIGITS) -> str:
    """The first ``digits`` hex digits of SHA-256(canonical_json(obj))."""
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()[:digits]


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(Path(path), "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def arrays_sha256(*arrays: Any) -> str:
    """Hex SHA-256 of the raw bytes of torch tensors / numpy arrays, in order (contiguous CPU copies)."""
    import numpy as np

    h = hashlib.sha256()
    for a in arrays:
        if hasattr(a, "detach"):
            a = a.detach().cpu().contiguous().numpy()
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def state_sha256(state: Mapping[str, Any]) -> str:
    """Hex SHA-256 of a state_dict's values: names, dtypes, shapes and raw bytes, in sorted name order.

    Not the file's bytes: ``torch.save`` writes the file's own name into its archive (for an atomic
    write, a random temporary name), so two saves of the same weights are different files."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name]
        h.update(canonical_json([name, str(t.dtype), list(t.shape)]).encode())
        h.update(bytes.fromhex(arrays_sha256(t)))
    return h.hexdigest()


__all__ = ["RUN_ID_DIGITS", "EVAL_KEY_DIGITS", "KEY_DIGITS", "canonical_json", "short_hash", "file_sha256",
           "state_sha256", "arrays_sha256"]
