"""Tiny run configurations shared by the training, sampling and evaluation tests."""
from __future__ import annotations

from hdfm_bench.core.config import RunConfig

TINY_VIT = {"size": "tiny", "patch": 2, "width": 32, "depth": 2, "heads": 2, "bottleneck": 16}


SMALL = {"ihdm": {"K": 10, "sigma_blur_max": 4.0}, "cold_blur": {"T": 6}}


def cfg_for(tmp_path, path="noise_fm", **kw):
    base = dict(task="digits", path=path, path_params=SMALL.get(path, {}), backbone="vit",
                backbone_params=TINY_VIT, steps=40, batch_size=64, lr=3e-3, warmup=5,
                checkpoint_every=20, out_dir=str(tmp_path), ema_decays=(0.9, 0.99))
    base.update(kw)
    return RunConfig.from_mapping(base)
