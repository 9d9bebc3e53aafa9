"""The evaluation error type: any bad input, unknown extractor or metric, missing weights; one line."""
from __future__ import annotations


class MetricError(ValueError):
    """Any evaluation error (bad input, unknown extractor or metric, missing weights); one line."""

    def __init__(self, msg: str) -> None:
        super().__init__(" ".join(str(msg).split()))


__all__ = ["MetricError"]
