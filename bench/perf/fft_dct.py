"""Baseline for the speed benchmark: an FFT-based orthonormal DCT (Makhoul 1980) in torch.

This is the kind of DCT the reference implementations of IHDM and HDFM use (a port of an
FFT-based torch DCT): reorder the signal, one complex FFT, twiddle factors. Written here from
Makhoul's paper for the side-by-side benchmark only; ``methods.spectral`` uses matrices.
"""
from __future__ import annotations

import math

import torch


def _twiddle(n: int, like: torch.Tensor) -> torch.Tensor:
    k = torch.arange(n, dtype=like.dtype, device=like.device)
    return torch.polar(torch.ones_like(k), -math.pi * k / (2 * n))


def dct_fft(x: torch.Tensor) -> torch.Tensor:
    """Orthonormal DCT-II over the last axis via one length-N FFT."""
    n = x.shape[-1]
    v = torch.cat([x[..., ::2], x[..., 1::2].flip(-1)], dim=-1)
    out = (torch.fft.fft(v) * _twiddle(n, x)).real * math.sqrt(2.0 / n)
    out[..., 0] = out[..., 0] / math.sqrt(2.0)
    return out


def idct_fft(X: torch.Tensor) -> torch.Tensor:
    """Orthonormal DCT-III (inverse of :func:`dct_fft`) over the last axis via one inverse FFT."""
    n = X.shape[-1]
    scaled = X * math.sqrt(n / 2.0)
    scaled = torch.cat([scaled[..., :1] * math.sqrt(2.0), scaled[..., 1:]], dim=-1)
    flipped = torch.cat([torch.zeros_like(scaled[..., :1]), scaled[..., 1:].flip(-1)], dim=-1)
    spec = torch.complex(scaled, -flipped) * _twiddle(n, X).conj()
    v = torch.fft.ifft(spec).real
    out = torch.empty_like(v)
    half = (n + 1) // 2
    out[..., ::2] = v[..., :half]
    out[..., 1::2] = v[..., half:].flip(-1)
    return out


def dct2_fft(x: torch.Tensor) -> torch.Tensor:
    return dct_fft(dct_fft(x).transpose(-1, -2)).transpose(-1, -2)


def idct2_fft(x: torch.Tensor) -> torch.Tensor:
    return idct_fft(idct_fft(x).transpose(-1, -2)).transpose(-1, -2)


def heat_blur_fft(x: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    """The reference implementations' blur: idct2(exp(−Λ τ) ⊙ dct2(x)), per-sample τ."""
    h, w = x.shape[-2:]
    lam = ((math.pi * torch.arange(h, dtype=x.dtype)[:, None] / h) ** 2
           + (math.pi * torch.arange(w, dtype=x.dtype)[None, :] / w) ** 2)
    gain = torch.exp(-lam * tau.reshape(-1, 1, 1, 1))
    return idct2_fft(gain * dct2_fft(x))
