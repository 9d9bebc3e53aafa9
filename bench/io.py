"""Atomic file writes: a temporary file in the destination folder, then a rename.

A crash or a kill never leaves a half-written result, and an existing file is only replaced
once the new one is complete.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterator


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``dest``; rename it onto ``dest`` if the block succeeds."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=dest.suffix or ".tmp", dir=dest.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp makes 0600 files: give the result the mode a plain open() would (or the old one).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, dest.stat().st_mode & 0o777 if dest.exists() else 0o666 & ~umask)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(dest: str | os.PathLike, text: str) -> Path:
    with atomic_path(dest) as tmp:
        tmp.write_text(text)
    return Path(dest)


def write_with(dest: str | os.PathLike, writer: Callable[[Path], None]) -> Path:
    """Atomically write ``dest`` with ``writer(tmp_path)`` (e.g. ``fig.savefig``)."""
    with atomic_path(dest) as tmp:
        writer(tmp)
    return Path(dest)


def append_line(dest: str | os.PathLike, line: str, fsync: bool = False) -> None:
    """Append one line, all or nothing, safe for concurrent writer processes.

    One ``os.write`` on an ``O_APPEND`` descriptor under an exclusive ``flock``: writers never
    interleave; a failed write is truncated away; a writer killed mid-write leaves at most one
    unterminated line, which the next writer isolates by starting with a newline (readers skip
    lines that are not valid JSON).
    """
    data = (line.rstrip("\n") + "\n").encode("utf-8")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
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
