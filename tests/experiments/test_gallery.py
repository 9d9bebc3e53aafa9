"""The path gallery: every path from source (t = 0) to data (t = 1) on real images."""
from __future__ import annotations

import os

import numpy as np
import pytest

from hdfm_bench import cli


def test_gallery_writes_a_png(tmp_path):
    out = tmp_path / "paths.png"
    assert cli.main(["gallery", "--out", str(out), "--times", "0,0.5,1"]) == 0
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert [p for p in os.listdir(tmp_path) if p != "paths.png"] == []  # no temporary left behind


def test_gallery_series_runs_from_source_to_data():
    from hdfm_bench.experiments.gallery import corrupt_series
    from hdfm_bench.tasks import colour_image, digit_image

    img = colour_image("china.jpg", 16)
    assert img.shape == (1, 3, 16, 16) and img.min() >= -1 and img.max() <= 1
    assert digit_image(3, 8).shape == (1, 1, 8, 8)
    s = corrupt_series("hdfm", img, [0.0, 1.0])
    np.testing.assert_allclose(s[1], img[0], atol=1e-12)
    with pytest.raises(ValueError, match="unknown sample image"):
        colour_image("cat.png")
