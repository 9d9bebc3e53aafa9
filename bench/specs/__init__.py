"""The sweep specs shipped with the package (``hdfm_bench/specs/*.toml``) and where to find them.

``hdfm-bench sweep NAME`` accepts a file path or the name of a shipped spec (``ablation-mnist``).
"""
from __future__ import annotations

from pathlib import Path

SPECS_DIR = Path(__file__).resolve().parent
DEFAULT_SPEC = SPECS_DIR / "digits-mini.toml"


def shipped() -> list[str]:
    """Names of the shipped specs (without ``.toml``)."""
    return sorted(p.stem for p in SPECS_DIR.glob("*.toml"))


def resolve(spec: str | Path) -> Path:
    """A spec file: ``spec`` itself when it names an existing file, else the shipped spec of that name."""
    path = Path(spec)
    if path.is_file():
        return path
    name = path.name[:-5] if path.name.endswith(".toml") else path.name
    if path.parent == Path(".") and name in shipped():
        return SPECS_DIR / f"{name}.toml"
    return path  # not found: the loader names it in its error


__all__ = ["SPECS_DIR", "DEFAULT_SPEC", "shipped", "resolve"]
