"""The results store: long-format metric rows, safe for many concurrent writer processes.

One row per (run, checkpoint, metric, protocol). A row is a dict with at least ``run_id``,
``checkpoint_step``, ``metric``, ``value`` (finite number) and ``protocol`` (a JSON-serialisable
dict: the protocol stamp — extractor, extractor_hash, n_gen, n_ref, reference_split,
reference_hash, resolution, sampler, steps, nfe, cfg_scale, cfg_interval, ema, seed, budget, ...).
Optional columns ``method``, ``path``, ``target``, ``task`` and ``created`` (UTC ISO time,
filled in when absent) are stored when given; other JSON-serialisable keys are kept as well.
Each stored row also gets ``protocol_hash`` (:meth:`ResultStore.protocol_hash`).

Design (why JSON lines rather than SQLite): the store is one append-only text file,
``<dir>/results.jsonl``, readable with any tool and mergeable by ``cat``. Each
:meth:`ResultStore.append` call writes **one line holding the whole batch**
(``{"v": 1, "rows": [...]}``) with a single ``os.write`` on an ``O_APPEND`` descriptor while
holding an exclusive ``fcntl.flock``. Hence:

* concurrent writers never interleave (the lock serialises them; O_APPEND puts every write
  at the current end);
* a batch is all-or-nothing: a line is either complete and valid JSON (the whole batch) or a
  truncated prefix, which is never valid JSON; if the write itself fails, the writer truncates
  the file back to its previous size;
* a writer killed (SIGKILL) mid-write leaves at most one unterminated partial line at the end.
  The reader skips any line that is not valid JSON, and any stored row without its required
  keys or a finite value, and lists them by line number (``notes``, summed up in one
  StoreWarning); the next writer, under the lock, starts its line with a newline when the file
  does not end with one, so the partial line can never merge with a good one.

SQLite in WAL mode would give the same guarantees but is a binary file and is unreliable on
network filesystems; flock on a local disk plus O_APPEND is simpler and sufficient here
(``flock`` is advisory and also unreliable over some NFS setups — keep stores on local disk).
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import numbers
import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hdfm_bench.core.hashing import KEY_DIGITS, short_hash
from hdfm_bench.core.io import append_line, write_with

__all__ = ["ResultStore", "StoreError", "StoreWarning", "REQUIRED", "OPTIONAL", "FILE_NAME", "read_results"]

REQUIRED = ("run_id", "checkpoint_step", "metric", "value", "protocol")
OPTIONAL = ("method", "path", "target", "task", "created")
_BASE_COLUMNS = (
    "run_id", "checkpoint_step", "metric", "value",
    "method", "path", "target", "task", "created", "protocol_hash", "protocol_json",
)

FILE_NAME = "results.jsonl"
_FORMAT_VERSION = 1


class StoreWarning(UserWarning):
    """Lines or rows of a store that a read left out (``ResultStore.notes`` lists them)."""


def _row_problem(row: Any) -> str | None:
    """Why a stored row cannot be used (None when it can)."""
    if not isinstance(row, dict):
        return f"a {type(row).__name__}, not a row"
    missing = [k for k in REQUIRED if k not in row]
    if missing:
        return f"missing {', '.join(missing)}"
    v = row["value"]
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
        return f"value {v!r} is not a finite number"
    if not isinstance(row["protocol"], dict):
        return "protocol is not a dict"
    return None


class StoreError(ValueError):
    """A row that cannot be stored (missing keys, non-finite value, bad protocol), or a bad store."""


def _json_default(o: Any) -> Any:
    """Let numpy scalars/arrays serialise as their Python equivalents (same JSON, same hash)."""
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"object of type {type(o).__name__} is not JSON serialisable")


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False,
                      default=_json_default, ensure_ascii=False)


def _freeze(v: Any) -> Any:
    """Column value for a flattened protocol field: lists → tuples (hashable), dicts → JSON."""
    if isinstance(v, list):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, dict):
        return _canonical(v)
    return v


class ResultStore:
    """An append-only, multi-process-safe store of long-format metric rows.

    ``path`` is a directory (the rows live in ``<path>/results.jsonl``) or a file path ending
    in ``.jsonl``. Parent directories are created on the first append.
    """

    def __init__(self, path: str | os.PathLike, *, fsync: bool = True) -> None:
        p = Path(path)
        self.file = p if p.suffix == ".jsonl" else p / FILE_NAME
        self.fsync = fsync
        self.skipped_lines = 0  # invalid (partial) lines seen by the last read()
        self.notes: list[str] = []  # what the last read left out, with line numbers

    def __repr__(self) -> str:
        return f"ResultStore({str(self.file)!r})"

    # ------------------------------------------------------------------ hashing / validation
    @staticmethod
    def protocol_hash(protocol: Mapping[str, Any]) -> str:
        """Stable hash of a protocol dict (``core.hashing.short_hash``, 16 hex digits).

        Independent of key order (at every nesting level); numpy scalars hash like the
        equivalent Python numbers.
        """
        if not isinstance(protocol, Mapping):
            raise StoreError(f"protocol is a {type(protocol).__name__}; expected a dict")
        try:
            _canonical(dict(protocol))  # refuses NaN and objects JSON cannot hold
        except (TypeError, ValueError) as e:
            raise StoreError(f"protocol is not JSON-serialisable: {e}") from None
        return short_hash(dict(protocol), KEY_DIGITS)

    def _prepare(self, row: Any, k: int) -> dict[str, Any]:
        if not isinstance(row, Mapping):
            raise StoreError(f"row {k} is a {type(row).__name__}; expected a dict")
        missing = [key for key in REQUIRED if key not in row]
        if missing:
            raise StoreError(f"row {k} is missing required key(s) {missing}; required: {list(REQUIRED)}")
        out = dict(row)
        v = out["value"]
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise StoreError(f"row {k}: value {v!r} is not a real number")
        v = float(v)
        if not math.isfinite(v):
            raise StoreError(f"row {k}: value {v} is not finite")
        out["value"] = v
        step = out["checkpoint_step"]
        if step is not None:
            if isinstance(step, bool) or not isinstance(step, numbers.Integral):
                raise StoreError(f"row {k}: checkpoint_step {step!r} is not an integer (or None)")
            out["checkpoint_step"] = int(step)
        if not isinstance(out["run_id"], str) or not out["run_id"]:
            raise StoreError(f"row {k}: run_id {out['run_id']!r} is not a non-empty string")
        if not isinstance(out["metric"], str) or not out["metric"]:
            raise StoreError(f"row {k}: metric {out['metric']!r} is not a non-empty string")
        try:
            h = self.protocol_hash(out["protocol"])
        except StoreError as e:
            raise StoreError(f"row {k}: {e}") from None
        out["protocol"] = json.loads(_canonical(dict(out["protocol"])))
        out["protocol_hash"] = h  # derived from the protocol: a stale hash in a copied row is replaced
        out.pop("protocol_json", None)
        if out.get("created") is None:
            out["created"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        try:
            _canonical(out)
        except (TypeError, ValueError) as e:
            raise StoreError(f"row {k} is not JSON-serialisable: {e}") from None
        return out

    # ------------------------------------------------------------------ writing
    def append(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Append rows, all or nothing: every row is validated before anything is written.

        Returns the number of rows written. Raises StoreError for a row missing a required
        key, a non-finite value, or a protocol that is not a JSON-serialisable dict.
        """
        if isinstance(rows, Mapping):
            raise StoreError("append() takes a list of row dicts, not a single dict")
        prepared = [self._prepare(r, k) for k, r in enumerate(rows)]
        if not prepared:
            return 0
        line = json.dumps({"v": _FORMAT_VERSION, "rows": prepared}, separators=(",", ":"),
                          allow_nan=False, default=_json_default, ensure_ascii=False)
        append_line(self.file, line, fsync=self.fsync)
        return len(prepared)

    def replace(self, rows: Iterable[Mapping[str, Any]], whole_methods: bool = False) -> int:
        """Store ``rows`` as the only copy of their measurements: stored rows of the same run, checkpoint
        step, method, metric and protocol are dropped and the file is rewritten atomically (a re-run of the
        default suite replaces its rows instead of repeating them); with ``whole_methods`` every stored row
        of a method label in ``rows`` is dropped (a suite whose config changed: its old runs' rows go).
        Rows of other measurements are kept; a store with damaged lines is only appended to, so that
        nothing already written is lost."""
        prepared = [self._prepare(r, k) for k, r in enumerate(rows)]

        def identity(r: Mapping[str, Any]) -> tuple:
            return r["run_id"], r.get("checkpoint_step"), r.get("method"), r["metric"], r.get("protocol_hash")

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", StoreWarning)
            old = self.rows()
        if self.notes:
            return self.append(prepared)
        new = {identity(r) for r in prepared}
        methods = {r.get("method") for r in prepared} if whole_methods else set()
        kept = [r for r in old if identity(r) not in new and r.get("method") not in methods]
        type(self).write_fresh(self.file, kept + prepared)
        return len(prepared)

    def check_writable(self) -> None:
        """Refuse, before any work, a store path that cannot hold rows: an existing folder where the file
        should be, a file that is not a results store, or a folder that cannot be created."""
        if self.file.is_dir():
            raise StoreError(f"results store {self.file} is a folder, not a .jsonl file")
        if self.file.exists():
            with open(self.file, "rb") as fh:
                head = fh.readline(1 << 20).strip()
            if head:
                try:
                    ok = isinstance(json.loads(head).get("rows"), list)
                except (ValueError, AttributeError):
                    ok = False
                if not ok:
                    raise StoreError(f"{self.file} is not a results store (its first line is not a row batch)")
            if not os.access(self.file, os.W_OK):
                raise StoreError(f"results store {self.file} is not writable")
            return
        parent = self.file.parent
        while not parent.exists():
            parent = parent.parent
        if not parent.is_dir() or not os.access(parent, os.W_OK):
            raise StoreError(f"cannot create the results store {self.file}: {parent} is not a writable folder")

    # ------------------------------------------------------------------ reading
    def rows(self) -> list[dict[str, Any]]:
        """All complete, valid stored rows, in append order (raw dicts, protocol as a dict).

        A line that is not a row batch, or a row lacking a required key or a finite value, is left
        out; ``notes`` says which (line numbers, 1-based) and why, and one :class:`StoreWarning`
        sums them up. An unterminated last line is what a writer killed mid-append leaves."""
        self.skipped_lines, self.notes = 0, []
        if not self.file.exists():
            return []
        with open(self.file, "rb") as fh:
            blob = fh.read()
        lines = blob.split(b"\n")
        out: list[dict[str, Any]] = []
        for lineno, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            try:
                batch = json.loads(raw)["rows"]
                if not isinstance(batch, list):
                    raise TypeError
            except (ValueError, KeyError, TypeError):
                self.skipped_lines += 1
                cut = lineno == len(lines)  # no newline after it
                self.notes.append(f"line {lineno}: " + ("unterminated (a writer stopped mid-append)" if cut
                                                        else "not a batch of rows (invalid JSON or no 'rows' list)"))
                continue
            for j, row in enumerate(batch):
                problem = _row_problem(row)
                if problem:
                    self.notes.append(f"line {lineno}, row {j + 1}: {problem}")
                    continue
                out.append(row)
        if self.notes:
            shown = "; ".join(self.notes[:3]) + (f"; and {len(self.notes) - 3} more" if len(self.notes) > 3 else "")
            warnings.warn(StoreWarning(f"{self.file}: left out {shown}"), stacklevel=2)
        return out

    def read(self) -> pd.DataFrame:
        """The store as a DataFrame, one row per stored row.

        Columns: run_id, checkpoint_step, metric, value, method, path, target, task, created,
        protocol_hash, protocol_json (the protocol as sorted JSON), any extra row keys, and one
        ``protocol.<key>`` column per top-level protocol field (lists become tuples, nested
        dicts JSON strings; fields a row lacks are missing values).
        """
        records = []
        for r in self.rows():
            proto = r.get("protocol") or {}
            rec = {k: v for k, v in r.items() if k != "protocol"}
            rec["protocol_json"] = _canonical(proto)
            for k, v in proto.items():
                rec[f"protocol.{k}"] = _freeze(v)
            records.append(rec)
        df = pd.DataFrame.from_records(records)
        for c in _BASE_COLUMNS:
            if c not in df.columns:
                df[c] = pd.Series(dtype=object if c != "value" else float, index=df.index)
        base = list(_BASE_COLUMNS)
        rest = sorted(c for c in df.columns if c not in base and not c.startswith("protocol."))
        proto_cols = sorted(c for c in df.columns if c.startswith("protocol."))
        return df[base + rest + proto_cols]

    def __len__(self) -> int:
        return len(self.rows())

    @classmethod
    def write_fresh(cls, dest: str | os.PathLike, rows: Iterable[Mapping[str, Any]]) -> ResultStore:
        """A new store file at ``dest`` holding exactly ``rows`` (validated), replacing any old one at once."""
        dest = Path(dest)
        if dest.suffix != ".jsonl":
            dest = dest / FILE_NAME

        def write(tmp: Path) -> None:  # tmp ends in .jsonl, like dest
            tmp.write_bytes(b"")
            cls(tmp).append(rows)

        write_with(dest, write)
        return cls(dest)


def read_results(path: str | os.PathLike, use: str, option: str = "--store") -> tuple[pd.DataFrame, list[str]]:
    """The rows of the results store at ``path`` (a ``.jsonl`` file or a folder holding one) as a frame,
    with one note per line or row the read left out (``<file>: left out line 3: ...``) for the caller
    to show; no :class:`StoreWarning` is emitted.

    Raises ValueError when ``path`` is a file that is not a store (``option``: how the caller named it)
    or when the store holds no readable rows (``use``: what they were for, e.g. "tabulate"), and
    FileNotFoundError when there is no store."""
    store = ResultStore(path)
    if Path(path).is_file() and store.file != Path(path):
        raise ValueError(f"{option} {path} is not a results store (a store is a .jsonl file or a folder holding one)")
    if not store.file.is_file():
        raise FileNotFoundError(f"results store not found: {store.file}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StoreWarning)
        df = store.read()
    if df.empty and store.notes:
        raise ValueError(f"results store {store.file} holds no readable rows ({store.notes[0]}"
                         + (f"; and {len(store.notes) - 1} more" if len(store.notes) > 1 else "") + ")")
    if df.empty:
        raise ValueError(f"no results to {use} in {path}")
    return df, [f"{store.file}: left out {note}" for note in store.notes]
