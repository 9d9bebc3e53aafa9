"""The dead-leaves task: seeded and exact, balanced classes, a power-law spectrum, a cache that survives damage."""
from __future__ import annotations

import numpy as np
import pytest

from hdfm_bench.evaluation.metrics.spectral import radial_power
from hdfm_bench.tasks import TaskError, get_task
from hdfm_bench.tasks.deadleaves import render


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    task = get_task("deadleaves", n_train=600, n_test=50, root=str(tmp_path_factory.mktemp("dl")))
    return task, *task.generate("train")


def test_shape_range_classes_and_determinism(images, tmp_path):
    task, x, y = images
    assert x.shape == (600, 3, 32, 32) and x.dtype == np.uint8 and task.shape == (3, 32, 32)
    assert np.bincount(y, minlength=4).min() > 100  # four classes, each about a quarter
    again = get_task("deadleaves", n_train=600, n_test=50, root=str(tmp_path)).generate("train")
    assert np.array_equal(x, again[0]) and np.array_equal(y, again[1])
    test_x, _ = task.generate("test")
    assert not np.array_equal(test_x[:50], x[:50])  # train and test draw from disjoint streams
    other = get_task("deadleaves", n_train=600, n_test=50, seed=1, root=str(tmp_path)).generate("train")[0]
    assert not np.array_equal(other, x)


def test_colour_and_palettes(images):
    _, x, y = images
    rgb = x.reshape(len(x), 3, -1).astype(float).mean(-1)
    warm, cool = rgb[y // 2 == 0], rgb[y // 2 == 1]
    assert warm[:, 0].mean() > warm[:, 2].mean() + 20  # warm: more red than blue
    assert cool[:, 2].mean() > cool[:, 0].mean() + 20  # cool: more blue than red
    assert (x[:, 0] != x[:, 1]).mean() > 0.5  # colour, not grey


def test_power_spectrum_follows_a_power_law(images):
    """Radially averaged DCT power per coefficient ∝ f^-α with α near 2 (natural images: α ≈ 2)."""
    _, x, _ = images
    bands = radial_power(x)["bands"]
    f = np.array([(b["f_low"] + b["f_high"]) / 2 for b in bands])
    p = np.array([b["power"] for b in bands])
    slope, _ = np.polyfit(np.log(f), np.log(p), 1)
    assert -2.4 < slope < -1.4, slope
    assert np.all(np.diff(p[np.argsort(f)]) < 0)  # monotone: every band has less power than the one below


def test_shapes_are_discs_or_squares():
    """One leaf of radius 8 over the background, away from the border: a disc covers ≈ π·8² pixels inside
    a box of 15–17 pixels, a square 16²–17² (pixel centres within |d| ≤ 8 of its centre)."""
    for label, lo, hi in ((0, 0.9 * np.pi * 64, 1.1 * np.pi * 64), (1, 16 * 16, 17 * 17)):
        seen = 0
        for seed in range(40):
            img = render(np.array([label]), np.random.Generator(np.random.PCG64(seed)), 64, 1, 8.0, 8.0)[0]
            covered = np.abs(img.astype(int) - img[:, :1, :1].astype(int)).sum(0) > 0
            rows, cols = np.nonzero(covered)
            if not len(rows) or rows.min() == 0 or cols.min() == 0 or rows.max() == 63 or cols.max() == 63:
                continue  # clipped by the border, or hidden in the background's corner
            assert lo <= covered.sum() <= hi, (label, covered.sum())
            sides = (15, 16, 17) if label == 0 else (16, 17)  # a disc may reach only its tangent pixels' neighbours
            assert rows.max() - rows.min() + 1 in sides and cols.max() - cols.min() + 1 in sides
            seen += 1
        assert seen >= 5


def test_cache_is_written_reused_and_redrawn_when_damaged(tmp_path):
    root = tmp_path / "cache"
    task = get_task("deadleaves", n_train=40, n_test=8, root=str(root))
    x, y = task.load("train")
    files = sorted(root.glob("train-*.npz"))
    assert len(files) == 1 and x.shape == (40, 3, 32, 32) and float(x.min()) >= -1 and float(x.max()) <= 1
    files[0].write_bytes(b"not a zip")
    again, _ = get_task("deadleaves", n_train=40, n_test=8, root=str(root)).load("train")
    assert np.array_equal(again.numpy(), x.numpy())
    with pytest.raises(TaskError, match=r"r_max \(2\) must be >= r_min \(4\)"):
        get_task("deadleaves", r_min=4, r_max=2)


def test_shipped_extractor_classifies_other_seeds_and_sees_blur_and_noise():
    """domain-deadleaves on a split it never saw (seed 1): accurate, FID small against the seed-0 test
    split, and growing with blur and with noise (it sees structure at small scales, not only colour)."""
    import torch
    import torch.nn.functional as F

    from hdfm_bench.evaluation.metrics import compute_metrics
    from hdfm_bench.evaluation.metrics import extractors as ex
    from hdfm_bench.evaluation.metrics.fidelity import classifier_accuracy

    model, info = ex.domain_classifier("domain-deadleaves")
    assert ex.file_sha256(info["path"]) == ex.EXTRACTORS["domain-deadleaves"]["sha256"] and info["test_accuracy"] > 0.95
    ref_task, other_task = get_task("deadleaves"), get_task("deadleaves", seed=1, n_test=1000)
    ref = ref_task.to_uint8(ref_task.load("test")[0])
    x, y = other_task.load("test")
    u8 = other_task.to_uint8(x)
    assert classifier_accuracy(u8, y, "domain-deadleaves") > 0.95

    def fid(images):
        return compute_metrics(generated=images, reference=ref, extractor="domain-deadleaves", metrics=("fid",))["fid"]

    blurred = F.avg_pool2d(u8.float(), 3, stride=1, padding=1, count_include_pad=False).round().to(torch.uint8)
    noisy = (u8.float() + 25 * torch.randn(u8.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 255)
    same, blur, noise = fid(u8), fid(blurred), fid(noisy.round().to(torch.uint8))
    assert same < 0.1 * blur and same < 0.1 * noise, (same, blur, noise)
