"""The one-line forms of an exception that every layer prints (CLI errors, run records, job states)."""
from __future__ import annotations

import errno


def one_line(err: BaseException) -> str:
    """An exception as a short single line: ``Type: message``."""
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def last_line(err: BaseException) -> str:
    """An exception as ``Type: the last line of its message`` (where a traceback-like message ends)."""
    lines = [ln.strip() for ln in str(err).strip().splitlines() if ln.strip()]
    return f"{type(err).__name__}: {lines[-1]}" if lines else type(err).__name__


#: how an operating-system error reads in a message (the path it names follows)
_OS_WORDS = {
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "is a folder, not a file",
    errno.EEXIST: "exists already (and is not a folder)",
    errno.ENOENT: "does not exist",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOSPC: "the disk is full",
    errno.EROFS: "the file system is read-only",
}


def os_error_line(err: OSError) -> str:
    """An OSError as words naming its path (``[Errno 20] Not a directory: 'x/y'`` reads
    ``x/y: a part of the path is a file, not a folder``); other errors: their first line."""
    words = _OS_WORDS.get(err.errno or -1)
    if words is None or err.filename is None:
        text = str(err).strip()
        return text.splitlines()[0] if text else type(err).__name__
    return f"{err.filename}: {words}"


__all__ = ["last_line", "one_line", "os_error_line"]
