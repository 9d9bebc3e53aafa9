"""One registration mechanism for every extensible table of hdfm-bench.

Paths, samplers, backbones, tasks, feature extractors and metrics each live in a :class:`Registry`
owned by the module that defines their contract (``methods.paths.base``, ``methods.samplers.base``,
``backbones.registry``, ``tasks.registry``, ``evaluation.metrics.extractors``,
``evaluation.metrics.features``). The built-ins register through the same public functions a user
calls from their own module (``hdfm_bench.register_path`` and friends), in the spirit of
torch-fidelity's ``register_feature_extractor``::

    from hdfm_bench import register_path

    @register_path            # the class's ``name`` attribute is its name
    class MyPath(Path): ...

    @register_backbone("my_net", presets=MY_PRESETS)   # or an explicit name (and what the layer needs)
    def build_my_net(shape, num_classes=0, size="small", **params): ...

A name is validated (lower-case letters, digits, ``_`` or ``-``, starting with a letter) and a name
that exists already is refused in one line naming the module that holds it. A registry reads as a
mapping from name to entry (``PATHS["hdfm"]``, ``list(PATHS)``, ``name in PATHS``), in the order of
registration; :meth:`Registry.lookup` gives the entry or the registry's own one-line error.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import is_dataclass
from typing import Any, Generic, TypeVar

from . import plugins

T = TypeVar("T")

#: what a registered name may look like (the built-ins: ``noise_fm``, ``domain-mnist``, ``cold_alg2``)
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]*$")


class RegistryError(ValueError):
    """A refused registration (bad or duplicate name, bad entry); one line."""

    def __init__(self, msg: str) -> None:
        super().__init__(" ".join(str(msg).split()))


def _origin(obj: Any) -> str:
    """The module an entry comes from (for messages and, later, run records)."""
    return getattr(obj, "__module__", None) or type(obj).__module__


class Registry(Mapping[str, T], Generic[T]):
    """Named entries of one ``kind`` ("path", "sampler", ...), filled by :meth:`register`.

    ``error``: the exception type of an unknown-name look-up (each layer words its own errors).
    ``name_of``: the name an entry carries itself (a class's ``name`` attribute), used when
    :meth:`register` is given no name. ``check``: validates an entry before it is added (raise
    :class:`RegistryError`, or return ``None``). ``describe``: an entry as plain data (``hdfm-bench list``).
    """

    def __init__(self, kind: str, *, error: type[Exception] = ValueError,
                 name_of: Callable[[Any], str] | None = None,
                 check: Callable[[str, T], None] | None = None,
                 describe: Callable[[str, T], dict[str, Any]] | None = None) -> None:
        self.kind = kind
        self.error = error
        self._entries: dict[str, T] = {}
        self._origins: dict[str, str] = {}
        self._name_of = name_of
        self._check = check
        self._describe = describe

    # ---- registration -------------------------------------------------------------------------
    def register(self, name: Any = None, obj: Any = None, /) -> Any:
        """Add an entry: ``@register`` (the entry names itself), ``@register("name")``, or
        ``register("name", obj)``. Returns the entry, so it works as a decorator."""
        if name is not None and not isinstance(name, str):  # @register on a class that names itself
            return self._add(None, name)
        if obj is not None:
            return self._add(name, obj)
        return lambda entry: self._add(name, entry)

    def _add(self, name: str | None, obj: T) -> T:
        if name is None:
            if self._name_of is None:
                raise RegistryError(f"register_{self.kind}: give a name, e.g. "
                                    f"@register_{self.kind}(\"my_{self.kind}\")")
            name = self._name_of(obj)
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise RegistryError(f"cannot register {self.kind} {name!r} from {_origin(obj)}: a name is lower-case "
                                "letters, digits, '_' or '-', starting with a letter")
        if name in self._entries:
            raise RegistryError(f"cannot register {self.kind} '{name}' from {_origin(obj)}: the name is already "
                                f"registered by {self._origins[name]}")
        if self._check is not None:
            self._check(name, obj)
        self._entries[name] = obj
        self._origins[name] = _origin(obj)
        return obj

    def unregister(self, name: str) -> T:
        """Remove ``name`` and return its entry (for tests and interactive sessions; runs never call it)."""
        entry = self.lookup(name)
        del self._entries[name], self._origins[name]
        return entry

    # ---- look-up ------------------------------------------------------------------------------
    def lookup(self, name: str) -> T:
        """The entry ``name``; the registry's error ``unknown <kind> '<name>'; known: ...`` otherwise."""
        if name not in self._entries and isinstance(name, str):
            plugins.load_entry_points()  # a job process: installed plugins register on the first unknown name
        if name not in self._entries:
            raise self.error(f"unknown {self.kind} '{name}'; known: {', '.join(self._entries)}")
        return self._entries[name]

    def origin(self, name: str) -> str:
        """The module that registered ``name``."""
        self.lookup(name)
        return self._origins[name]

    def describe(self) -> dict[str, dict[str, Any]]:
        """Every entry as plain data (JSON-serialisable), in registration order."""
        out = {}
        for name, obj in self._entries.items():
            out[name] = self._describe(name, obj) if self._describe else {"summary": summary_of(obj)}
        return out

    # ---- Mapping --------------------------------------------------------------------------------
    def __getitem__(self, name: str) -> T:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._entries)})"


def class_registry(kind: str, base: type, *, error: type[Exception] = ValueError, dataclass: bool = False,
                   describe: Callable[[str, Any], dict[str, Any]] | None = None) -> Registry:
    """A registry of subclasses of ``base`` that name themselves (their ``name`` class attribute), as
    paths, samplers and tasks do; ``dataclass``: entries must be dataclasses (their fields are parameters)."""
    what = f"a {kind} is a {'dataclass ' if dataclass else ''}subclass of {base.__module__}.{base.__qualname__}"

    def check(name: str, cls: Any) -> None:
        if not (isinstance(cls, type) and issubclass(cls, base)) or (dataclass and not is_dataclass(cls)):
            raise RegistryError(f"cannot register {kind} '{name}' from {_origin(cls)}: {what}")
        if cls.name != name:
            raise RegistryError(f"cannot register {kind} '{name}' from {cls.__module__}: its class says name = "
                                f"'{cls.name}'")

    return Registry(kind, error=error, name_of=lambda cls: cls.name, check=check, describe=describe)


def summary_of(obj: Any) -> str:
    """An entry's one-line documentation: its ``summary`` attribute, else its docstring's first line."""
    text = getattr(obj, "summary", None) or (obj.__doc__ or "").strip().split("\n")[0]
    return " ".join(str(text).split())


__all__ = ["NAME_PATTERN", "Registry", "RegistryError", "class_registry", "summary_of"]
