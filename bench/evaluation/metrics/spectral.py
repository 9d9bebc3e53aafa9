"""The spectral ratio: how a generated set's DCT power spectrum compares with a reference set's.

Source: docs/methods.md §9. HDFM's own definition (reportedly its Fig. 5) was not recoverable, so
**the spectral ratio is this project's own definition** — state it as such in tables:

1. Images are mapped to [0, 1] (uint8 ``u / 255``; floats in [-1, 1] ``(x + 1) / 2``). Three
   channels become luminance ``0.299 R + 0.587 G + 0.114 B``; one channel is used as is.
2. Orthonormal 2-D DCT-II per image (:func:`methods.spectral.dct`, the basis of the corruption
   paths; no FFT wrap-around artefacts); power ``P_ij = X_ij²``. Radial frequency
   ``f_ij = ½ √((i/H)² + (j/W)²)`` cycles/px, from 0 to ≈ 0.707.
3. Octave bands ``[2^(−m−1), 2^(−m))`` cycles/px for m = 0..5. Band 0 is ``f ≥ 0.5`` (it also
   holds the corner up to ≈ 0.707). DC (f = 0) is excluded, and so are the few coefficients
   with ``0 < f < 1/64`` (only at resolutions above 64 px). Bands with no coefficient at the
   given resolution are omitted (e.g. m = 4, 5 for 8×8 images).
4. ``S_m`` = mean of P over the coefficients of band m, averaged over the images of a set.
   Per-band ratio ``R_m = E_gen[S_m] / E_ref[S_m]``; high-frequency energy ratio
   ``R_hf = E_gen[Σ_{f ≥ 1/8} P] / E_ref[Σ_{f ≥ 1/8} P]``; log-spectral distance
   ``LSD = mean_m |ln R_m|``.

A ratio whose numerator and denominator are both 0 is reported as 1.0 (two sets with no
energy there agree); a 0 reference with non-zero generated energy gives ``inf``.

Everything is computed in float64 numpy on the CPU, in chunks, whatever the input's library.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from hdfm_bench.methods import spectral as _spectral

__all__ = ["band_edges", "band_masks", "radial_power", "spectral_ratio", "trajectory_ratio", "Spectrum"]

N_BANDS = 6            # m = 0..5 (docs/methods.md §9)
HF_CUTOFF = 1.0 / 8.0  # R_hf sums the power at f >= 1/8 cycles/px
FLOAT_RANGE = 1.01     # tolerated |x| for float images in [-1, 1]
LUMA = (0.299, 0.587, 0.114)
_CHUNK = 2048          # images per DCT call (bounds the float64 working memory)


def radial_frequency(h: int, w: int) -> np.ndarray:
    """``f_ij = ½ √((i/H)² + (j/W)²)`` in cycles/px for the DCT-II coefficients, shape (H, W)."""
    fi = np.arange(h, dtype=np.float64)[:, None] / h
    fj = np.arange(w, dtype=np.float64)[None, :] / w
    return 0.5 * np.sqrt(fi**2 + fj**2)


def _band_mask(f: np.ndarray, m: int) -> np.ndarray:
    lo, hi = 2.0 ** (-m - 1), 2.0 ** (-m)
    if m == 0:
        return f >= lo  # band 0 also holds the corner, f up to ≈ 0.707
    return (f >= lo) & (f < hi)


def band_edges(h: int, w: int) -> list[dict[str, Any]]:
    """The non-empty octave bands at resolution H × W (docs/methods.md §9, step 3).

    Returns a list of ``{"m", "f_low", "f_high", "n_coef"}``, m ascending (band 0 = highest
    frequencies). ``f_high`` of band 0 is reported as 1.0 (its nominal octave edge); the band
    also contains the coefficients between 0.5 and ≈ 0.707.
    """
    if int(h) < 1 or int(w) < 1:
        raise ValueError(f"resolution {h}x{w} is empty; expected H, W >= 1")
    f = radial_frequency(int(h), int(w))
    out = []
    for m in range(N_BANDS):
        n = int(_band_mask(f, m).sum())
        if n:
            out.append({"m": m, "f_low": 2.0 ** (-m - 1), "f_high": 2.0 ** (-m), "n_coef": n})
    return out


def band_masks(h: int, w: int) -> list[np.ndarray]:
    """Boolean (H, W) masks of the DCT coefficients in each band of :func:`band_edges`, in its order."""
    f = radial_frequency(int(h), int(w))
    return [_band_mask(f, e["m"]) for e in band_edges(h, w)]


def _to_numpy(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch tensor, without importing torch
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if x.dtype == object:
        raise ValueError(f"{name} is not a numeric array")
    return x


def _validate(x: Any, name: str, check_range: bool = True) -> np.ndarray:
    """Check one image set and return it as luminance in [0, 1], float64, shape (N, H, W)."""
    a = _to_numpy(x, name)
    if a.ndim != 4:
        raise ValueError(f"{name} has shape {tuple(a.shape)}; expected (N, C, H, W) images")
    n, c, h, w = a.shape
    if n == 0:
        raise ValueError(f"{name} is empty (N = 0); expected at least one image")
    if h == 0 or w == 0:
        raise ValueError(f"{name} has an empty spatial shape {h}x{w}")
    if c not in (1, 3):
        raise ValueError(f"{name} has {c} channels; expected 1 (grey) or 3 (RGB)")
    if a.dtype == np.uint8:
        y = a.astype(np.float64) / 255.0
    elif np.issubdtype(a.dtype, np.floating):
        y = a.astype(np.float64)
        if not np.all(np.isfinite(y)):
            raise ValueError(f"{name} contains NaN or Inf values")
        if check_range:
            lo, hi = float(y.min()), float(y.max())
            if lo < -FLOAT_RANGE or hi > FLOAT_RANGE:
                raise ValueError(
                    f"{name} has float values in [{lo:.4g}, {hi:.4g}]; expected images in [-1, 1] "
                    f"(tolerance ±{FLOAT_RANGE}) or uint8 0..255"
                )
        y = (y + 1.0) / 2.0
    else:
        raise ValueError(f"{name} has dtype {a.dtype}; expected uint8 (0..255) or float in [-1, 1]")
    if c == 3:
        y = LUMA[0] * y[:, 0] + LUMA[1] * y[:, 1] + LUMA[2] * y[:, 2]
    else:
        y = y[:, 0]
    return y


def _mean_power(lum: np.ndarray) -> np.ndarray:
    """Mean over images of the DCT-II power ``X_ij²``, shape (H, W); lum is (N, H, W)."""
    n = lum.shape[0]
    acc = np.zeros(lum.shape[1:], dtype=np.float64)
    for s in range(0, n, _CHUNK):
        coef = _spectral.dct(lum[s:s + _CHUNK, None])  # (b, 1, H, W)
        acc += np.einsum("bchw,bchw->hw", coef, coef)
    return acc / n


def _power_summary(mean_p: np.ndarray, n: int) -> dict[str, Any]:
    h, w = mean_p.shape
    f = radial_frequency(h, w)
    bands = []
    for b in band_edges(h, w):
        mask = _band_mask(f, b["m"])
        bands.append({**b, "power": float(mean_p[mask].mean())})
    return {
        "bands": bands,
        "hf_power": float(mean_p[f >= HF_CUTOFF].sum()),
        "n": n,
        "resolution": [h, w],
    }


def radial_power(images: Any, *, check_range: bool = True) -> dict[str, Any]:
    """Radially binned DCT power of one image set (docs/methods.md §9, steps 1–4, one set).

    ``images``: (N, C, H, W), uint8 or float in [-1, 1], numpy or torch.
    Returns ``{"bands": [{"m", "f_low", "f_high", "n_coef", "power"}], "hf_power", "n",
    "resolution"}``, where ``power`` is ``E[S_m]`` (mean power per coefficient of band m,
    averaged over images) and ``hf_power`` is ``E[Σ_{f ≥ 1/8} P]``. ``check_range=False``
    skips the [-1, 1] check (intermediate sampling states).
    """
    lum = _validate(images, "images", check_range)
    return _power_summary(_mean_power(lum), lum.shape[0])


def _ratio(num: float, den: float) -> float:
    if den == 0.0:
        return 1.0 if num == 0.0 else math.inf
    return num / den


def _compare(gen: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    if gen["resolution"] != ref["resolution"]:
        raise ValueError(
            f"generated resolution {gen['resolution']} differs from reference {ref['resolution']}"
        )
    bands = []
    for bg, br in zip(gen["bands"], ref["bands"]):
        bands.append({"m": bg["m"], "f_low": bg["f_low"], "f_high": bg["f_high"],
                      "ratio": _ratio(bg["power"], br["power"])})
    logs = [abs(math.log(b["ratio"])) if b["ratio"] > 0 else math.inf for b in bands]
    return {
        "bands": bands,
        "r_hf": _ratio(gen["hf_power"], ref["hf_power"]),
        "lsd": float(np.mean(logs)) if logs else 0.0,
        "n_gen": gen["n"],
        "n_ref": ref["n"],
        "resolution": list(gen["resolution"]),
    }


def _shape_chw(x: Any) -> tuple:
    return tuple(int(d) for d in x.shape[1:]) if getattr(x, "ndim", 0) == 4 else ()


def _check_pair(gen: Any, ref: Any, gname: str = "generated") -> None:
    g_chw, r_chw = _shape_chw(gen), _shape_chw(ref)
    if g_chw and r_chw and g_chw != r_chw:
        raise ValueError(
            f"{gname} images have (C, H, W) = {g_chw} but reference images have {r_chw}; "
            "sets must share C, H, W"
        )


class Spectrum:
    """The mean DCT power of an image set, accumulated batch by batch (memory flat in n)."""

    def __init__(self) -> None:
        self.total: np.ndarray | None = None
        self.n = 0

    def add(self, images: Any, check_range: bool = True, name: str = "images") -> None:
        lum = _validate(images, name, check_range)
        part = _mean_power(lum) * lum.shape[0]
        if self.total is not None and self.total.shape != part.shape:
            raise ValueError(f"{name} have resolution {list(part.shape)}, earlier batches {list(self.total.shape)}")
        self.total = part if self.total is None else self.total + part
        self.n += lum.shape[0]

    def extend(self, other: Spectrum) -> None:
        if other.n:
            self.total = other.total if self.total is None else self.total + other.total
            self.n += other.n

    def summary(self) -> dict[str, Any]:
        if not self.n:
            raise ValueError("no images were added to the spectrum")
        return _power_summary(self.total / self.n, self.n)

    def ratio(self, reference: Spectrum) -> dict[str, Any]:
        """This set's spectral ratio against ``reference`` (as :func:`spectral_ratio`)."""
        return _compare(self.summary(), reference.summary())

    def state(self) -> dict[str, Any]:
        return {"n": self.n, "total": self.total}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Spectrum:
        out = cls()
        out.n = int(state["n"])
        total = state["total"]
        out.total = None if total is None else np.asarray(total.numpy() if hasattr(total, "numpy") else total,
                                                          dtype=np.float64)
        return out


def spectral_ratio(*, generated: Any, reference: Any) -> dict[str, Any]:
    """The spectral ratio of a generated set against a reference set (docs/methods.md §9; ours).

    Both sets are (N, C, H, W) arrays — uint8 0..255 or float in [-1, 1], numpy or torch —
    with the same C, H, W (N may differ). Returns::

        {"bands": [{"m", "f_low", "f_high", "ratio"}, ...],  # R_m, non-empty bands only
         "r_hf": R_hf, "lsd": mean_m |ln R_m|,
         "n_gen": N, "n_ref": M, "resolution": [H, W]}

    R_m < 1 means the generated images have less energy in band m than the reference
    (blurrier); R_hf > 1 means excess high-frequency energy (noise, artefacts).
    Raises ValueError (one line) on wrong ndim, empty sets, mismatched C/H/W, NaN/Inf,
    floats outside [-1.01, 1.01], unsupported dtypes or channel counts.
    """
    _check_pair(generated, reference)
    g = _validate(generated, "generated")
    r = _validate(reference, "reference")
    return _compare(_power_summary(_mean_power(g), g.shape[0]),
                    _power_summary(_mean_power(r), r.shape[0]))


def trajectory_ratio(
    states: Sequence[Any], times: Sequence[float], *, reference: Any, check_range: bool = False
) -> list[dict[str, Any]]:
    """The spectral ratio along a sampling trajectory: one entry per state (a ratio-versus-t curve).

    ``states``: a list of (N, C, H, W) float arrays (x̂ or z_t at each step), ``times`` the
    matching t (t = 0 noise/source, t = 1 data). Intermediate states such as z_t near t = 0
    need not lie in [-1, 1], so their range is not checked unless ``check_range=True``;
    they are mapped to [0, 1]-scale with the same ``(x + 1) / 2`` (which only moves DC, so
    the ratios are unaffected by the offset). The reference spectrum is computed once.
    Returns ``[{"t", "r_hf", "lsd", "bands"}, ...]`` in the order given.
    """
    states, times = list(states), list(times)
    if len(states) != len(times):
        raise ValueError(f"got {len(states)} states but {len(times)} times; expected one t per state")
    if not states:
        raise ValueError("states is empty; expected at least one sampling state")
    r = _validate(reference, "reference")
    ref = _power_summary(_mean_power(r), r.shape[0])
    curve = []
    for k, (x, t) in enumerate(zip(states, times)):
        t = float(t)
        if not math.isfinite(t):
            raise ValueError(f"times[{k}] = {t} is not finite")
        _check_pair(x, reference, f"states[{k}]")
        s = _validate(x, f"states[{k}]", check_range)
        res = _compare(_power_summary(_mean_power(s), s.shape[0]), ref)
        curve.append({"t": t, "r_hf": res["r_hf"], "lsd": res["lsd"], "bands": res["bands"]})
    return curve
