"""The backbone registry: ``@register_backbone(name, presets=...)`` on a builder function.

A builder is ``build(shape, num_classes=0, size=<default preset>, **params) -> nn.Module``; its
``presets`` (size name → every parameter with its value) are what ``hdfm-bench list`` shows and
what ``resolve_params`` checks overrides against. A user's backbone registers the same way
(``hdfm_bench.register_backbone``).
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from hdfm_bench.backbones.params import BackboneError, as_int
from hdfm_bench.core.registry import Registry, RegistryError, summary_of

Builder = Callable[..., nn.Module]


def _check(name: str, build: Builder) -> None:
    if not callable(build):
        raise RegistryError(f"cannot register backbone '{name}': {build!r} is not a builder function")
    size = inspect.signature(build).parameters.get("size")
    if size is None or size.default is inspect.Parameter.empty or size.default not in getattr(build, "presets", {}):
        raise RegistryError(f"cannot register backbone '{name}' from {build.__module__}: the builder needs a "
                            "'size' parameter whose default is one of its presets")


def _describe(name: str, build: Builder) -> dict[str, Any]:
    size = inspect.signature(build).parameters["size"].default
    return {"summary": summary_of(build), "default_size": size, "sizes": list(build.presets),
            "parameters": [{"name": k, "default": v} for k, v in build.presets[size].items()]}


#: every backbone builder by name
BACKBONES: Registry[Builder] = Registry("backbone", error=BackboneError, check=_check, describe=_describe)


def register_backbone(name: str, presets: Mapping[str, Mapping[str, Any]]) -> Callable[[Builder], Builder]:
    """Decorator: register a builder under ``name`` with its ``presets`` (size → parameters)."""
    def add(build: Builder) -> Builder:
        build.presets = presets
        return BACKBONES.register(name, build)
    return add


def list_backbones() -> list[str]:
    """Names of the registered backbones."""
    return list(BACKBONES)


def build_backbone(name: str, shape: tuple[int, ...], num_classes: int = 0, **params: Any) -> nn.Module:
    """Build backbone ``name`` for inputs of ``shape`` (without the batch dim); ``size=`` picks a preset."""
    build = BACKBONES.lookup(name)
    try:
        shape = tuple(as_int(name, "shape", s, minimum=1) for s in shape)
    except TypeError:
        raise BackboneError(f"{name}: shape must be a tuple of positive integers, got {shape!r}") from None
    num_classes = as_int(name, "num_classes", num_classes)
    return build(shape, num_classes, **params)


__all__ = ["BACKBONES", "Builder", "build_backbone", "list_backbones", "register_backbone"]
