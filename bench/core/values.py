"""One rule for turning a user's value into a declared type (paths, tasks, run configs, backbones).

Values reach hdfm-bench from Python calls, TOML files and the command line (``--set a.b=1``,
``--backbone-params patch=4``), so the same parameter may arrive as ``4``, ``4.0`` or ``"4"``.
:func:`coerce` is the one place that decides what is acceptable for a type; each caller words the
refusal for its own parameter (the messages name the path, task, key or backbone).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

#: spellings of a boolean accepted from text (TOML and command lines give true/false)
TRUE, FALSE = ("true", "1", "yes"), ("false", "0", "no")


class CoercionError(ValueError):
    """``value`` cannot be read as the declared type (the caller words the message)."""


def coerce(value: Any, kind: type) -> Any:
    """``value`` as ``kind`` (bool, int, float, str, Path, tuple, dict) or :class:`CoercionError`.

    bool: a bool, 0 / 1, or true/false/1/0/yes/no as text. int: an int, an integral float, or text
    of an int (never a bool). float: an int or a float, or text of a number (never a bool). str:
    text. Path: text or a path-like, ``~`` expanded, returned as text. tuple: a list or tuple.
    dict: a dict. Finiteness is the caller's check (``core.overrides.non_finite``).
    """
    if kind is bool:
        return _to_bool(value)
    if isinstance(value, bool) and kind in (int, float):
        raise CoercionError(value)
    try:
        if kind is int:
            return _to_int(value)
        if kind is float and isinstance(value, (int, float, str)):
            return float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise CoercionError(value) from None
    if kind is Path and isinstance(value, (str, os.PathLike)):
        return str(Path(value).expanduser())
    if kind is tuple and isinstance(value, list):
        return tuple(value)
    if kind not in (int, float, Path) and isinstance(value, kind):
        return value
    raise CoercionError(value)


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in TRUE + FALSE:
        return value.strip().lower() in TRUE
    raise CoercionError(value)


def _to_int(value: Any) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return int(value.strip())
    raise CoercionError(value)


__all__ = ["CoercionError", "coerce"]
