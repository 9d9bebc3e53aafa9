"""The spectral ratio against closed forms and invariants."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hdfm_bench.evaluation.metrics import band_edges, radial_power, spectral_ratio, trajectory_ratio
from hdfm_bench.methods import spectral


def _images(n=16, c=1, h=16, w=16, seed=0):
    """Structured images in [-1, 1]: random smooth blobs plus random pixels."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, c, h, w))
    return np.clip(0.5 * spectral.heat_blur(x, 1.0) + 0.5 * x, -1, 1)


def _cosine(h, w, ki, kj):
    """A single orthonormal DCT-II basis image (energy only in coefficient (ki, kj))."""
    i = np.arange(h)[:, None]
    j = np.arange(w)[None, :]
    return np.cos(np.pi * ki * (2 * i + 1) / (2 * h)) * np.cos(np.pi * kj * (2 * j + 1) / (2 * w))


def test_identical_sets_give_unit_ratios():
    x = _images()
    r = spectral_ratio(generated=x, reference=x.copy())
    assert [b["m"] for b in r["bands"]] == [0, 1, 2, 3, 4]  # 16 px: f >= 1/32 only
    for b in r["bands"]:
        assert b["ratio"] == pytest.approx(1.0, abs=1e-9)
    assert r["r_hf"] == pytest.approx(1.0, abs=1e-9)
    assert r["lsd"] == pytest.approx(0.0, abs=1e-9)
    assert r["n_gen"] == r["n_ref"] == 16 and r["resolution"] == [16, 16]


def test_band_edges_and_frequencies():
    e = band_edges(28, 28)
    assert [b["m"] for b in e] == list(range(6))
    assert sum(b["n_coef"] for b in e) == 28 * 28 - 1  # all but DC at 28 px
    assert [b["m"] for b in band_edges(8, 8)] == [0, 1, 2, 3]
    assert e[0]["f_low"] == 0.5 and e[0]["f_high"] == 1.0
    assert e[3]["f_low"] == 0.0625 and e[3]["f_high"] == 0.125


def test_blur_lowers_and_noise_raises_high_frequencies():
    x = _images(n=32, h=16, w=16, seed=1)
    blurred = spectral.heat_blur(x, 2.0)
    r = spectral_ratio(generated=blurred, reference=x)
    assert r["r_hf"] < 1
    for b in r["bands"]:
        if b["m"] <= 2:  # every band at f >= 1/8
            assert b["ratio"] < 1
    assert r["lsd"] > 0
    noisy = np.clip(x + 0.3 * np.random.default_rng(2).standard_normal(x.shape), -1, 1)
    rn = spectral_ratio(generated=noisy, reference=x)
    assert rn["r_hf"] > 1
    assert rn["bands"][0]["ratio"] > 1


def test_single_cosine_mode_lands_in_the_right_band():
    h = w = 16
    # (ki, kj) = (12, 0): f = 0.5 * 12/16 = 0.375 -> band 1 [0.25, 0.5).
    # (ki, kj) = (3, 0):  f = 0.5 * 3/16 = 0.09375 -> band 3 [1/16, 1/8).
    a = 0.5 * _cosine(h, w, 12, 0)[None, None]
    b = 0.5 * _cosine(h, w, 3, 0)[None, None]
    ra, rb = radial_power(a), radial_power(b)
    pa = {x["m"]: x["power"] for x in ra["bands"]}
    pb = {x["m"]: x["power"] for x in rb["bands"]}
    # Luminance (x + 1)/2 = 0.5 + 0.25 cos(..). Σ_i cos²(πk(2i+1)/2H) = H/2 for k > 0 and
    # Σ_j 1 = W for k = 0, so the only non-DC coefficient is X = 0.25 √(H W / 2), power
    # 0.0625 H W / 2 = 8, and S_1 spreads it over the n_coef coefficients of band 1.
    n1 = band_edges(h, w)[1]["n_coef"]
    energy = 0.0625 * h * w / 2
    expected = energy / n1
    assert pa[1] == pytest.approx(expected, rel=1e-9)
    assert all(pa[m] == pytest.approx(0.0, abs=1e-20) for m in pa if m != 1)
    assert all(pb[m] == pytest.approx(0.0, abs=1e-20) for m in pb if m != 3)
    assert ra["hf_power"] == pytest.approx(energy, rel=1e-9)
    assert rb["hf_power"] == pytest.approx(0.0, abs=1e-20)
    # generated: twice the amplitude of the band-1 mode, same band-3 mode -> R_1 = 4, R_3 = 1
    r = spectral_ratio(generated=0.5 * (2 * a + b), reference=0.5 * (a + b))
    ratios = {x["m"]: x["ratio"] for x in r["bands"]}
    assert ratios[1] == pytest.approx(4.0, rel=1e-9)
    assert ratios[3] == pytest.approx(1.0, rel=1e-9)
    assert r["r_hf"] == pytest.approx(4.0, rel=1e-9)  # only the band-1 mode has f >= 1/8
    # exactly zero spectra on both sides: 0/0 -> 1
    z = np.zeros((1, 1, h, w))
    assert all(x["ratio"] == 1.0 for x in spectral_ratio(generated=z, reference=z)["bands"])


def test_uint8_float_numpy_torch_agree():
    rng = np.random.default_rng(3)
    u = rng.integers(0, 256, (8, 3, 12, 10), dtype=np.uint8)
    v = rng.integers(0, 256, (8, 3, 12, 10), dtype=np.uint8)
    f_u, f_v = u / 127.5 - 1.0, v / 127.5 - 1.0
    ref = spectral_ratio(generated=u, reference=v)
    for g, r in [(f_u, f_v), (torch.from_numpy(u), torch.from_numpy(v)),
                 (torch.from_numpy(f_u).float(), torch.from_numpy(f_v).float()), (u, f_v)]:
        out = spectral_ratio(generated=g, reference=r)
        assert out["r_hf"] == pytest.approx(ref["r_hf"], rel=1e-6)
        for a, b in zip(out["bands"], ref["bands"]):
            assert a["ratio"] == pytest.approx(b["ratio"], rel=1e-6)


def test_rgb_uses_luminance():
    rng = np.random.default_rng(4)
    g = rng.uniform(-1, 1, (6, 3, 8, 8))
    r = rng.uniform(-1, 1, (6, 3, 8, 8))
    lum = lambda x: (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[:, None]
    a, b = spectral_ratio(generated=g, reference=r), spectral_ratio(generated=lum(g), reference=lum(r))
    assert a["r_hf"] == pytest.approx(b["r_hf"], rel=1e-12)
    mean = lambda x: x.mean(axis=1, keepdims=True)
    c = spectral_ratio(generated=mean(g), reference=mean(r))
    assert abs(c["r_hf"] - a["r_hf"]) > 1e-6  # not a plain channel average


def test_trajectory_ratio_is_monotone_under_decreasing_blur():
    x = _images(n=16, h=16, w=16, seed=5)
    times = [0.0, 0.25, 0.5, 0.75, 1.0]
    states = [spectral.heat_blur(x, 4.0 * (1 - t)) if t < 1 else x for t in times]
    curve = trajectory_ratio(states, times, reference=x)
    assert [c["t"] for c in curve] == times
    hf = [c["r_hf"] for c in curve]
    assert all(a < b for a, b in zip(hf, hf[1:]))
    assert hf[-1] == pytest.approx(1.0, abs=1e-9) and curve[-1]["lsd"] == pytest.approx(0, abs=1e-9)
    # intermediate states (e.g. noise at t = 0) may leave [-1, 1]
    noisy = trajectory_ratio([3 * x], [0.0], reference=x)
    assert noisy[0]["r_hf"] == pytest.approx(9.0, rel=1e-9)


@pytest.mark.parametrize(
    "gen, ref, match",
    [
        (np.zeros((2, 1, 8, 8)), np.zeros((2, 1, 8, 6)), "C, H, W"),
        (np.zeros((2, 1, 8, 8)), np.zeros((2, 3, 8, 8)), "C, H, W"),
        (np.zeros((1, 8, 8)), np.zeros((2, 1, 8, 8)), "expected \\(N, C, H, W\\)"),
        (np.full((2, 1, 8, 8), np.nan), np.zeros((2, 1, 8, 8)), "NaN"),
        (np.full((2, 1, 8, 8), np.inf), np.zeros((2, 1, 8, 8)), "NaN or Inf"),
        (np.full((2, 1, 8, 8), 2.0), np.zeros((2, 1, 8, 8)), "\\[-1, 1\\]"),
        (np.zeros((0, 1, 8, 8)), np.zeros((2, 1, 8, 8)), "empty"),
        (np.zeros((2, 1, 8, 8)), np.zeros((0, 1, 8, 8)), "empty"),
        (np.zeros((2, 2, 8, 8)), np.zeros((2, 2, 8, 8)), "channels"),
        (np.zeros((2, 1, 8, 8), dtype=np.int32), np.zeros((2, 1, 8, 8)), "dtype"),
    ],
)
def test_errors(gen, ref, match):
    with pytest.raises(ValueError, match=match) as e:
        spectral_ratio(generated=gen, reference=ref)
    assert "\n" not in str(e.value)


def test_trajectory_errors():
    x = np.zeros((2, 1, 8, 8))
    with pytest.raises(ValueError, match="2 states but 1 times"):
        trajectory_ratio([x, x], [0.0], reference=x)
    with pytest.raises(ValueError, match="empty"):
        trajectory_ratio([], [], reference=x)
    with pytest.raises(ValueError, match="C, H, W"):
        trajectory_ratio([np.zeros((2, 1, 8, 6))], [0.0], reference=x)
    with pytest.raises(ValueError, match="NaN"):
        trajectory_ratio([np.full((2, 1, 8, 8), np.nan)], [0.0], reference=x)
