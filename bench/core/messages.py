"""The one-line forms of an exception that every layer prints (CLI errors, run records, job states)."""
from __future__ import annotations


def one_line(err: BaseException) -> str:
    """An exception as a short single line: ``Type: message``."""
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def last_line(err: BaseException) -> str:
    """An exception as ``Type: the last line of its message`` (where a traceback-like message ends)."""
    lines = [ln.strip() for ln in str(err).strip().splitlines() if ln.strip()]
    return f"{type(err).__name__}: {lines[-1]}" if lines else type(err).__name__


__all__ = ["last_line", "one_line"]
