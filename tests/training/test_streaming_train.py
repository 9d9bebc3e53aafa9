"""Training on streamed data: exact kill-and-resume through the DataLoader, folder and zip training alike,
and resident memory that does not grow with the number of images."""
from __future__ import annotations

import pytest
import torch

from hdfm_bench.perf.streaming import training_peak_rss
from hdfm_bench.tasks.prepare import prepare_zip
from hdfm_bench.tasks.samples import synthetic_folder
from hdfm_bench.training import Interrupted, checkpoint, train
from tests.training.helpers import cfg_for

TINY_RGB = {"size": "tiny", "patch": 4, "width": 32, "depth": 2, "heads": 2, "bottleneck": 16}


def _state(cfg):
    return checkpoint.load(cfg.run_dir() / "checkpoint.pt")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("streamed")
    folder = synthetic_folder(tmp / "folder", 40, size=24, classes=4, seed=2)
    return folder, prepare_zip(folder, tmp / "data.zip", 16, workers=1)["path"]


def _cfg(out, task, root, **kw):
    return cfg_for(out, "hdfm", task=task, task_params={"root": str(root), "resolution": 16, "hflip": True},
                   backbone_params=TINY_RGB, steps=12, batch_size=8, checkpoint_every=4, workers=2, log_every=3,
                   target="x", loss="v", **kw)


def test_streamed_run_resumes_exactly_and_folder_equals_zip(tmp_path, data):
    folder, archive = data
    straight = _cfg(tmp_path / "a", "imagezip", archive)
    train(straight, progress=False)
    cut = _cfg(tmp_path / "b", "imagezip", archive)
    with pytest.raises(Interrupted):
        train(cut, progress=False, stop_at=10)  # killed after the step-8 checkpoint; steps 9, 10 lost
    assert _state(cut)["step"] == 8
    resumed = train(cut, progress=False)
    assert resumed.record["starts"][-1] == 8
    a, b = _state(straight), _state(cut)
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for d in a["ema"]:
        for k in a["ema"][d]:
            assert torch.equal(a["ema"][d][k], b["ema"][d][k])
    assert [h[0] for h in resumed.record["history"]] == list(range(1, 13))
    # the folder streamed directly feeds the same batches, so it trains the same weights
    from_folder = _cfg(tmp_path / "c", "imagefolder", folder)
    train(from_folder, progress=False)
    c = _state(from_folder)
    for k in a["model"]:
        assert torch.equal(a["model"][k], c["model"][k]), k


def test_resident_memory_does_not_grow_with_the_number_of_images(tmp_path):
    """Peak RSS of a short training on 5,000 vs 50,000 synthetic 48×48 JPEGs: within 15 % (trainer process and
    the largest DataLoader worker). In memory, 50,000 images at 3×32×32 would add 527 MiB of float32."""
    peaks = {}
    for n in (5_000, 50_000):
        root = synthetic_folder(tmp_path / f"jpegs{n}", n, size=48, classes=10, seed=n)
        peaks[n] = training_peak_rss(root, tmp_path / f"runs{n}")
    small, large = peaks[5_000], peaks[50_000]
    print(f"peak RSS MiB: {peaks}")
    assert large["trainer_mib"] <= 1.15 * small["trainer_mib"], peaks
    assert large["worker_mib"] <= 1.15 * small["worker_mib"], peaks
