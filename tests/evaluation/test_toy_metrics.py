"""Toy distances (sliced Wasserstein, MMD) against closed forms."""
from __future__ import annotations

import numpy as np
import pytest

from hdfm_bench.evaluation.metrics.toy import mmd, sliced_wasserstein


def test_toy_distances_against_closed_forms():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3000, 2))
    assert sliced_wasserstein(a, a) == 0.0
    shift = np.array([0.3, 0.4])  # W1 of a shifted 1-D law = |shift·θ|; mean over the circle = |c| 2/π
    assert sliced_wasserstein(a, a + shift, n_proj=4096) == pytest.approx(0.5 * 2 / np.pi, rel=0.02)
    same = mmd(a, rng.standard_normal((3000, 2)))
    assert abs(same) < 2e-3 and mmd(a, a + shift) > 20 * abs(same)
    with pytest.raises(ValueError, match="NaN"):
        sliced_wasserstein(a, np.full_like(a, np.nan))
