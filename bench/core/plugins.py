"""Plugins: a user's module that registers paths, samplers, backbones, tasks, extractors or metrics
through the public ``register_*`` functions (issue 27), loaded without forking the package.

A plugin is named by a *spec*: an importable module (``"my_pkg.paths"``) or a Python file
(``"plugins/ve.py"``, a path ending in ``.py``). It is loaded

* from ``--plugin SPEC`` on any command,
* from ``plugins = [...]`` in a run config or a sweep spec (then every process that builds that
  config loads it too: the local, debug and Slurm jobs, each DDP rank, a later ``evaluate``),
* from the entry-point group :data:`ENTRY_POINT_GROUP` of installed packages: at the start of every
  command and whenever a registry is asked for a name it does not hold (so a job process finds them).

Each spec is imported once per process. Its record (:func:`record`) names the module, its package
version when it has one, and the SHA-256 of its source file; a run config's identity includes the
records' hashes, so a run id changes when a plugin's code changes. A plugin that fails to import, or
registers a name that exists, is one line naming it (:class:`PluginError`).
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

#: the entry-point group installed packages declare their plugins in (``[project.entry-points."hdfm_bench.plugins"]``)
ENTRY_POINT_GROUP = "hdfm_bench.plugins"
#: set (non-empty) to skip installed plugins, e.g. when a broken one stops every command
NO_PLUGINS_ENV = "HDFM_BENCH_NO_PLUGINS"

#: the module names a plugin file is imported under start with this
FILE_MODULE_PREFIX = "hdfm_bench_plugin_"

_LOADED: dict[str, ModuleType] = {}
_ENTRY_POINTS_LOADED = False


class PluginError(ValueError):
    """A plugin that cannot be loaded; one line naming it."""


def is_file(spec: str) -> bool:
    """Whether ``spec`` names a .py file (else a module)."""
    return spec.endswith(".py") or "/" in spec or "\\" in spec


def _import(spec: str) -> ModuleType:
    if is_file(spec):
        path = Path(spec).expanduser().resolve()
        if not path.is_file():
            raise PluginError(f"plugin '{spec}': no such file")
        digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
        name = f"{FILE_MODULE_PREFIX}{path.stem}_{digest}"  # one module per file, whatever its stem
        module_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(module_spec)  # type: ignore[arg-type]
        sys.modules[name] = module
        # the file lives in the user's folder: leave no __pycache__ beside it (a refused plugin changes
        # nothing on disk)
        writes, sys.dont_write_bytecode = sys.dont_write_bytecode, True
        try:
            module_spec.loader.exec_module(module)  # type: ignore[union-attr]
        except BaseException:
            del sys.modules[name]
            raise
        finally:
            sys.dont_write_bytecode = writes
        return module
    return importlib.import_module(spec)


def absolute(spec: str) -> str:
    """A file spec as an absolute path (a module name unchanged)."""
    if not isinstance(spec, str):
        raise PluginError(f"a plugin is a module name or a .py file, got {spec!r}")
    return str(Path(spec).expanduser().resolve()) if is_file(spec) else spec


def load(spec: str) -> ModuleType:
    """Import the plugin ``spec`` (a module name or a ``.py`` file) once; :class:`PluginError` if it fails."""
    if not isinstance(spec, str) or not spec.strip():
        raise PluginError(f"a plugin is a module name or a .py file, got {spec!r}")
    key = str(Path(spec).expanduser().resolve()) if is_file(spec) else spec
    if key in _LOADED:
        return _LOADED[key]
    try:
        module = _import(spec)
    except PluginError:
        raise
    except Exception as err:  # ImportError, a SyntaxError, a refused registration, anything it raises
        msg = " ".join(str(err).split()) or type(err).__name__
        raise PluginError(f"plugin '{spec}' failed to load: {type(err).__name__}: {msg}") from None
    _LOADED[key] = module
    return module


def load_all(specs: list[str] | tuple[str, ...]) -> list[ModuleType]:
    return [load(s) for s in specs]


def load_entry_points() -> list[str]:
    """Load every plugin installed packages declare in :data:`ENTRY_POINT_GROUP` (once per process);
    returns their module names."""
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return []
    _ENTRY_POINTS_LOADED = True
    if os.environ.get(NO_PLUGINS_ENV):
        return []
    names = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            load(ep.module)
        except PluginError as err:
            raise PluginError(f"{err} (installed plugin '{ep.name}' of {ep.dist.name if ep.dist else 'a package'}; "
                              f"{NO_PLUGINS_ENV}=1 skips installed plugins)") from None
        names.append(ep.module)
    return names


def _source_sha256(spec: str) -> str | None:
    """SHA-256 of a plugin's source as it is now (a file is not imported again; a module's own file)."""
    source = Path(spec).expanduser().resolve() if is_file(spec) else getattr(load(spec), "__file__", None)
    return hashlib.sha256(Path(source).read_bytes()).hexdigest() if source else None


def record(spec: str) -> dict[str, Any]:
    """What a run records of a plugin: its spec, module, package version (if any) and source SHA-256."""
    if is_file(spec):
        return {"spec": spec, "module": Path(spec).name, "sha256": _source_sha256(spec)}
    out: dict[str, Any] = {"spec": spec, "module": load(spec).__name__}
    dists = importlib.metadata.packages_distributions().get(spec.split(".")[0], [])
    if dists:
        out["version"] = f"{dists[0]} {importlib.metadata.version(dists[0])}"
    return {**out, "sha256": _source_sha256(spec)}


def identity(specs: list[str] | tuple[str, ...]) -> list[str]:
    """The code identity of ``specs`` (part of a run id, computed often): each plugin's source hash alone
    (no scan of the installed distributions)."""
    return [f"{Path(s).name if is_file(s) else s}@{(_source_sha256(s) or '')[:16]}" for s in specs]


__all__ = ["ENTRY_POINT_GROUP", "NO_PLUGINS_ENV", "FILE_MODULE_PREFIX", "PluginError", "absolute", "is_file", "load",
           "load_all", "load_entry_points", "record", "identity"]
