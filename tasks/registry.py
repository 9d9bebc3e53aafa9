"""The task registry: ``@register_task`` on a :class:`~hdfm_bench.tasks.contract.Task` subclass.

A user's data set registers the same way from their own module (``hdfm_bench.register_task``);
:func:`get_task` builds any registered task with validated parameters.
"""
from __future__ import annotations

from typing import Any

from hdfm_bench.core.registry import Registry, class_registry

from .contract import Task
from .errors import TaskError


def _describe(name: str, cls: type[Task]) -> dict[str, Any]:
    return {"summary": cls.summary,
            "parameters": [{"name": k, "default": None if p.required else p.default, "type": p.kind.__name__,
                            "doc": p.doc, "required": p.required} for k, p in cls.params.items()]}


#: every data task by name
TASKS: Registry[type[Task]] = class_registry("task", Task, error=TaskError, describe=_describe)
#: ``@register_task`` on a Task subclass adds it under its ``name``
register_task = TASKS.register


def list_tasks() -> list[str]:
    """Names of the registered tasks."""
    return list(TASKS)


def get_task(name: str, *, check_data: bool = True, **params: Any) -> Task:
    """The task registered as ``name`` with validated parameters.

    ``check_data=False`` validates the parameters only (no file is touched): for dry runs of
    specs whose data lives on the cluster, not here."""
    return TASKS.lookup(name)(check_data=check_data, **params)


__all__ = ["TASKS", "get_task", "list_tasks", "register_task"]
