"""Data, offline-first. Every image is mapped to [-1, 1] (the project's convention)."""
from .samples import colour_image, digit_image

__all__ = ["digit_image", "colour_image"]
