"""The data error type: one line naming the problem and, where there is one, the file."""
from __future__ import annotations


class TaskError(ValueError):
    """Any data error: a bad name or parameter, a missing/corrupt file, a failed download.

    The message is always a single line (newlines are folded into spaces) naming the
    problem and, where there is one, the file.
    """

    def __init__(self, msg: str) -> None:
        super().__init__(" ".join(str(msg).split()))


__all__ = ["TaskError"]
