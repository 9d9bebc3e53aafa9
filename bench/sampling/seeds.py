"""Per-image seeds (EDM's): image i of an evaluation draws everything from (seed, i) alone.

Each image owns a torch generator seeded with :func:`image_seed` and draws, in this order, its
prior noise, the training image of a data prior (IHDM, cold diffusion), then one noise tensor per
stochastic sampler step; and the sampler runs on aligned blocks of :data:`BLOCK` images, so every
image is computed in the same block whatever the split. So the same images come out, bit for bit
on a CPU with the same thread count, whatever the batch size, the number of processes or the number
of array tasks that share the work, and the first n images of a larger evaluation are the n images
of a smaller one. Class labels are balanced: image i gets i mod K.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from .settings import IMAGES_PER_SEED, MAX_SEED

#: the sampler always runs on aligned blocks of B images (block m = images [mB, (m + 1)B)): BLAS
#: kernels pick their blocking and threading by matrix shape, so a row's float result can depend on
#: the batch it is computed in; with one block shape and one block content per image, every split of
#: the index range (batch sizes, shards, processes) computes every image in exactly the same way.
#: B depends on the device only (small blocks are also the fastest on a CPU: cache-resident GEMMs)
BLOCK = {"cpu": 16, "cuda": 256}


def image_seed(seed: int, index: int) -> int:
    """The generator seed of image ``index`` of sampling seed ``seed`` (disjoint ranges per seed)."""
    if not 0 <= index < IMAGES_PER_SEED or not 0 <= seed < MAX_SEED:
        raise ValueError(f"image {index} of seed {seed} is out of range (0 <= seed < {MAX_SEED}, "
                         f"0 <= image < {IMAGES_PER_SEED})")
    return seed * IMAGES_PER_SEED + index


def seed_range(seed: int, start: int, stop: int) -> str:
    """The image seeds of images start..stop−1 of ``seed``, as the protocol records them."""
    return f"{image_seed(seed, start)}-{image_seed(seed, stop - 1)}"


class ImageGenerators:
    """One generator per image of a batch; draws are stacked in image order."""

    def __init__(self, seed: int, indices: Sequence[int]):
        self.indices = list(indices)
        self.generators = [torch.Generator().manual_seed(image_seed(seed, i)) for i in self.indices]

    def __len__(self) -> int:
        return len(self.generators)

    def randn(self, shape: Sequence[int]) -> torch.Tensor:
        """A standard-normal draw shaped (len, *shape): one per image, from its own generator."""
        return torch.stack([torch.randn(tuple(shape), generator=g) for g in self.generators])

    def randint(self, high: int | Sequence[int]) -> torch.Tensor:
        """One integer in [0, high) per image, from its own generator (``high``: one bound for all, or one
        per image)."""
        highs = [high] * len(self.generators) if isinstance(high, int) else list(high)
        return torch.cat([torch.randint(h, (1,), generator=g) for h, g in zip(highs, self.generators)])


def class_labels(indices: Sequence[int] | torch.Tensor, num_classes: int) -> torch.Tensor:
    """Image i gets class i mod K (balanced, as JiT's 50-per-class evaluation)."""
    return torch.as_tensor(list(indices) if not torch.is_tensor(indices) else indices, dtype=torch.long) % num_classes


def blocks(start: int, stop: int, block: int) -> list[tuple[int, int]]:
    """The aligned blocks [mB, (m + 1)B) that cover images start..stop−1."""
    return [(m * block, (m + 1) * block) for m in range(start // block, -(-stop // block))]


__all__ = ["IMAGES_PER_SEED", "MAX_SEED", "BLOCK", "image_seed", "seed_range", "ImageGenerators", "class_labels",
           "blocks"]
