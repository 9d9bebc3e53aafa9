"""The one ``key=value`` parser: TOML value rules, dotted keys for tables.

Used by ``train --set``, ``sweep --set`` / ``--slurm``, ``--sampler-param`` and the sweep spec's
overrides: ``steps=200`` is an int, ``lr=1e-3`` a float, ``conditional=false`` a bool,
``ema_decays=[0.99]`` a list, ``path_params.a=0.25`` sets key ``a`` of table ``path_params``, and
anything that is not a TOML value (``task=mnist``) is the bare string.
"""
from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable
from typing import Any


class OverrideError(ValueError):
    """A malformed ``key=value``; one line naming the option and the item."""


def parse_value(raw: str) -> Any:
    """A TOML value (``1``, ``2.5``, ``true``, ``[1, 2]``, ``"a b"``, ``nan``), else the bare string."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def split_assignment(item: str, what: str = "override") -> tuple[str, Any]:
    """``"key=value"`` → (key, parsed value); ``what`` names the option in the error."""
    if not isinstance(item, str) or "=" not in item:
        raise OverrideError(f"{what} '{item}' must look like key=value")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key:
        raise OverrideError(f"{what} '{item}' has an empty key")
    return key, parse_value(raw.strip())


def set_dotted(data: dict[str, Any], key: str, value: Any, what: str = "override") -> None:
    """Set ``data[key] = value``; ``a.b`` sets key ``b`` of the table ``a`` (created when absent)."""
    if "." in key:
        top, sub = key.split(".", 1)
        if not isinstance(data.get(top, {}), dict):
            raise OverrideError(f"{what} '{key}': '{top}' is not a table")
        data[top] = {**data.get(top, {}), sub: value}
    else:
        data[key] = value


def apply_override(data: dict[str, Any], item: str, what: str = "override") -> None:
    """Apply one ``key=value`` to ``data`` in place."""
    key, value = split_assignment(item, what)
    set_dotted(data, key, value, what)


def parse_assignments(items: Iterable[str] | None, what: str = "override") -> dict[str, Any]:
    """Several ``key=value`` items as one dict (later items win)."""
    out: dict[str, Any] = {}
    for item in items or []:
        apply_override(out, item, what)
    return out


def non_finite(value: Any, path: str = "") -> str | None:
    """The dotted name of the first NaN / ±inf number inside ``value`` (dicts, lists), else None."""
    if isinstance(value, float) and not math.isfinite(value):
        return path or "value"
    if isinstance(value, dict):
        for k, v in value.items():
            bad = non_finite(v, f"{path}.{k}" if path else str(k))
            if bad:
                return bad
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            bad = non_finite(v, f"{path}[{i}]")
            if bad:
                return bad
    return None


__all__ = ["OverrideError", "parse_value", "split_assignment", "set_dotted", "apply_override",
           "parse_assignments", "non_finite"]
