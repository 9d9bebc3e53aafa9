"""Atomic, durable file writes: a temporary file in the destination folder, fsync, then a rename.

A crash, a kill or a power loss never leaves a half-written or empty result under the final
name, and an existing file is only replaced once the new one is complete on disk. Every writer
in the project (checkpoints, run records, stores, tables, figures, caches) goes through here.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

#: temporaries are named ``.<name>.<random><suffix of name>`` beside their destination


def fsync_dir(folder: str | os.PathLike) -> None:
    """fsync a folder, so a rename inside it survives a power loss (no-op where unsupported)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


class DiskFull(OSError):
    """No space left on the device while writing a named file (the old file, if any, is intact)."""


@contextlib.contextmanager
def disk_full_names(dest: str | os.PathLike) -> Iterator[None]:
    """Turn "no space left on device" (or a quota) inside the block into DiskFull naming ``dest``."""
    try:
        yield
    except DiskFull:
        raise
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise DiskFull(err.errno, f"disk full: no space left to write {dest} (nothing was replaced)") from None


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``dest``; when the block succeeds, fsync it and rename it
    onto ``dest`` (then fsync the folder). On any error the temporary is removed."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with disk_full_names(dest):
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=dest.suffix or ".tmp", dir=dest.parent)
        os.close(fd)
        try:
            yield Path(tmp)
            # mkstemp makes 0600 files: give the result the mode a plain open() would (or the old one).
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, dest.stat().st_mode & 0o777 if dest.exists() else 0o666 & ~umask)
            if os.path.exists(tmp):
                _fsync_file(Path(tmp))
            os.replace(tmp, dest)
            fsync_dir(dest.parent)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


def stale_temporaries(dest: str | os.PathLike) -> list[Path]:
    """Temporaries that ``atomic_path(dest)`` writers killed mid-write left beside ``dest``."""
    dest = Path(dest)
    return sorted(dest.parent.glob(f".{dest.name}.*")) if dest.parent.is_dir() else []


def check_output_file(dest: str | os.PathLike, option: str = "--out", suffixes: tuple[str, ...] = ()) -> Path:
    """Refuse, before any work, an output file that cannot be written where it is named: an existing
    folder, a parent that is a file, or (``suffixes``) the wrong kind of name. Returns the path."""
    dest = Path(dest)
    if suffixes and dest.suffix.lower() not in suffixes:
        raise ValueError(f"{option} must name a {' or '.join(suffixes)} file, got {dest}")
    if dest.is_dir():
        raise ValueError(f"{option} {dest} is an existing folder; name a file")
    parent = dest.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"{option} {dest}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK):
        raise ValueError(f"{option} {dest}: {parent} is not writable")
    return dest


def check_output_folder(dest: str | os.PathLike, option: str = "--out-dir") -> Path:
    """Refuse, before any work, an output folder that cannot be made where it is named: an existing file,
    a parent that is a file, or a place that is not writable. Returns the path."""
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise ValueError(f"{option} {dest} is a file, not a folder")
    check_output_file(dest / "x", option)
    return dest


def write_text(dest: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``dest`` atomically."""
    with atomic_path(dest) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(dest)


def write_bytes(dest: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``dest`` atomically."""
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)
    return Path(dest)


def write_with(dest: str | os.PathLike, writer: Callable[[Path], object]) -> Path:
    """Atomically write ``dest`` with ``writer(tmp_path)`` (e.g. ``fig.savefig``, ``torch.save``)."""
    with atomic_path(dest) as tmp:
        writer(tmp)
    return Path(dest)


@contextlib.contextmanager
def locked(path: str | os.PathLike) -> Iterator[None]:
    """An exclusive advisory lock (``flock``) on the file ``path`` (created if needed) for the block:
    processes doing the same one-off work (a cache, a merge) take turns, the later ones find it done."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def append_line(dest: str | os.PathLike, line: str, fsync: bool = False) -> None:
    """Append one line, all or nothing, safe for concurrent writer processes.

    One ``os.write`` on an ``O_APPEND`` descriptor under an exclusive ``flock``: writers never
    interleave; a failed write is truncated away; a writer killed mid-write leaves at most one
    unterminated line, which the next writer isolates by starting with a newline (readers skip
    lines that are not valid JSON). ``fsync=True`` also flushes the file (and, on creation, its
    folder) to disk before returning.
    """
    data = (line.rstrip("\n") + "\n").encode("utf-8")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    created = not dest.exists()
    with disk_full_names(dest):  # the line is truncated away first; the error names the file
        fd = os.open(dest, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    data = b"\n" + data  # a writer died mid-line: keep its partial line separate
                try:
                    view = memoryview(data)
                    while view:  # one write in practice; loop only on a short write
                        n = os.write(fd, view)
                        view = view[n:]
                    if fsync:
                        os.fsync(fd)
                except BaseException:
                    os.ftruncate(fd, size)  # all or nothing
                    raise
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
        if fsync and created:
            fsync_dir(dest.parent)


__all__ = ["check_output_folder", "atomic_path", "write_text", "write_bytes", "write_with", "append_line", "fsync_dir",
           "stale_temporaries", "locked", "DiskFull", "disk_full_names",
           "check_output_file"]
