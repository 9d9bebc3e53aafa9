"""JiT-style pixel-space ViT (Li & He 2025, "Back to Basics: Let Denoising Generative Models Denoise").

A DiT (Peebles & Xie 2023) on raw pixel patches with the JiT choices: a linear *bottleneck*
patch embedding, 2-D RoPE instead of absolute position embeddings, RMSNorm, qk-norm, SwiGLU,
adaLN-Zero conditioning, optional in-context class tokens, and the optional LayerSync
regulariser (Haghighi et al. 2025).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hdfm_bench.backbones.layers import Backbone, RMSNorm, modulate
from hdfm_bench.backbones.params import BackboneError, as_float, as_int, resolve_params
from hdfm_bench.backbones.registry import register_backbone

_DEFAULTS = dict(mlp_ratio=8 / 3, in_context_tokens=0, in_context_start=0, dropout=0.0,
                 layersync=None, layersync_lambda=0.2)
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(width=96, depth=4, heads=4, bottleneck=32, patch=4, **_DEFAULTS),
    "small": dict(width=192, depth=6, heads=6, bottleneck=64, patch=4, **_DEFAULTS),
    # JiT-B/16; at 28x28 / 32x32 override ``patch``.
    "B": dict(width=768, depth=12, heads=12, bottleneck=128, patch=16,
              **{**_DEFAULTS, "in_context_tokens": 32, "in_context_start": 4}),
}


# ----------------------------------------------------------------------------------------- RoPE
def rope_2d_tables(rows: torch.Tensor, cols: torch.Tensor, head_dim: int,
                   base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables (N, head_dim) for 2-D rotary embedding (Su et al. 2021; 2-D as in JiT / RoPE-ViT).

    The first half of each head's channels is rotated by the row index, the second half by the
    column index, each half with the usual 1-D RoPE frequency ladder.
    """
    if head_dim % 4:
        raise BackboneError(f"vit: 2-D RoPE needs a head dimension divisible by 4, got {head_dim}")
    quarter = head_dim // 4
    freqs = base ** (-torch.arange(quarter, device=rows.device, dtype=torch.float32) / quarter)
    ang_r = rows.float()[:, None] * freqs  # (N, quarter)
    ang_c = cols.float()[:, None] * freqs
    # rotate-half layout inside each half: pairs (i, i + quarter) share an angle
    ang = torch.cat([ang_r, ang_r, ang_c, ang_c], dim=-1)  # (N, head_dim)
    return ang.cos(), ang.sin()


def rope_pairs(head_dim: int, sin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(partner index, signed sin) such that rope(x) = x · cos + x[..., partner] · signed_sin.

    Rotate-half inside each half of the channels pairs channel i with i ± head_dim/4; the sign of the
    rotation moves from the partner onto sin (exact: −a · b = a · −b), so one gather and two products
    replace the slices, negations and concatenations of the textbook form, with the same numbers."""
    d, q = head_dim // 2, head_dim // 4
    quarter = torch.arange(q, device=sin.device)
    partner = torch.cat([quarter + q, quarter, quarter + d + q, quarter + d])
    sign = torch.ones(head_dim, device=sin.device, dtype=sin.dtype)
    sign[:q], sign[d:d + q] = -1, -1
    return partner, sin * sign


def rotate(x: torch.Tensor, cos: torch.Tensor, partner: torch.Tensor, signed_sin: torch.Tensor) -> torch.Tensor:
    """2-D RoPE with the tables of :func:`rope_2d_tables` and :func:`rope_pairs` (tables cast to x's dtype)."""
    return x * cos.to(x.dtype) + x.index_select(-1, partner) * signed_sin.to(x.dtype)


def apply_rope_2d(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x`` (..., N, head_dim) by the tables from :func:`rope_2d_tables`.

    <rope(q, p), rope(k, p')> depends only on p - p' (per axis): scores are shift invariant.
    """
    return rotate(x, cos, *rope_pairs(x.shape[-1], sin))


# --------------------------------------------------------------------------------------- blocks
class Attention(nn.Module):
    """Multi-head self-attention with qk-norm (RMSNorm per head on q and k; Dehghani et al. 2023) and 2-D RoPE."""

    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(width, 3 * width)
        self.q_norm, self.k_norm = RMSNorm(width // heads), RMSNorm(width // heads)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, ...]) -> torch.Tensor:
        b, n, w = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        q, k = rotate(self.q_norm(q), *rope), rotate(self.k_norm(k), *rope)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(out.transpose(1, 2).reshape(b, n, w))


class SwiGLU(nn.Module):
    """SwiGLU feed-forward (Shazeer 2020): W3 (SiLU(W1 x) * W2 x)."""

    def __init__(self, width: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.w12 = nn.Linear(width, 2 * hidden)
        self.w3 = nn.Linear(hidden, width)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.w12(x).chunk(2, dim=-1)
        return self.w3(self.drop(F.silu(a) * b))


class Block(nn.Module):
    """Pre-RMSNorm transformer block with adaLN-Zero (DiT): shift/scale/gate from c, zero-init -> identity."""

    def __init__(self, width: int, heads: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.norm1, self.norm2 = RMSNorm(width), RMSNorm(width)
        self.attn = Attention(width, heads, dropout)
        self.mlp = SwiGLU(width, hidden, dropout)
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(width, 6 * width))

    def forward(self, x: torch.Tensor, c: torch.Tensor, rope: tuple[torch.Tensor, ...]) -> torch.Tensor:
        sh1, sc1, g1, sh2, sc2, g2 = self.ada(c).chunk(6, dim=-1)
        x = x + g1.unsqueeze(1) * self.attn(modulate(self.norm1(x), sh1, sc1), rope)
        return x + g2.unsqueeze(1) * self.mlp(modulate(self.norm2(x), sh2, sc2))


class FinalLayer(nn.Module):
    """RMSNorm + adaLN shift/scale + Linear to p*p*C (DiT final layer; all zero-init)."""

    def __init__(self, width: int, out_dim: int) -> None:
        super().__init__()
        self.norm = RMSNorm(width)
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))
        self.linear = nn.Linear(width, out_dim)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.ada(c).chunk(2, dim=-1)
        return self.linear(modulate(self.norm(x), shift, scale))


# ------------------------------------------------------------------------------------------ ViT
class ViT(Backbone):
    """JiT ViT: bottleneck patch embedding -> ``depth`` adaLN-Zero blocks -> final layer -> unpatchify.

    The patch embedding is two linear maps p²C -> bottleneck -> width with no nonlinearity in
    between (JiT's low-rank "bottleneck" embedding). Conditioning c = t_emb + class_emb.
    In-context tokens (class embedding + learned per-token embedding) are prepended before block
    ``in_context_start``; they get no rotation (RoPE position (0, 0)) and are dropped before the
    final layer.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        p = config
        super().__init__(config, cond_dim=p["width"])
        c, h, w = self.shape
        self.patch, self.grid = p["patch"], (h // p["patch"], w // p["patch"])
        self.ctx_tokens, self.ctx_start = p["in_context_tokens"], p["in_context_start"]
        self.layersync, self.layersync_lambda = p["layersync"], p["layersync_lambda"]
        width, patch_dim = p["width"], p["patch"] ** 2 * c
        hidden = max(8, int(round(width * p["mlp_ratio"] / 8)) * 8)  # 8/3*width, rounded to a multiple of 8
        self.embed_in = nn.Sequential(nn.Linear(patch_dim, p["bottleneck"], bias=False), nn.Linear(p["bottleneck"],
                                                                                                   width))
        self.ctx_pos = nn.Parameter(torch.randn(self.ctx_tokens, width) * 0.02) if self.ctx_tokens else None
        self.blocks = nn.ModuleList(Block(width, p["heads"], hidden, p["dropout"]) for _ in range(p["depth"]))
        self.final = FinalLayer(width, patch_dim)
        self._init_weights()
        rows, cols = torch.meshgrid(torch.arange(self.grid[0]), torch.arange(self.grid[1]), indexing="ij")
        self.register_buffer("_rows", rows.flatten(), persistent=False)
        self.register_buffer("_cols", cols.flatten(), persistent=False)

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear) and m not in self.t_embed.modules():
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        # adaLN-Zero: every block starts as the identity; final layer outputs exactly 0.
        for lin in [b.ada[1] for b in self.blocks] + [self.final.ada[1], self.final.linear]:
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    def _rope(self, prefix: int) -> tuple[torch.Tensor, ...]:
        """(cos, partner, signed sin) for the image tokens after ``prefix`` unrotated in-context tokens."""
        cos, sin = rope_2d_tables(self._rows, self._cols, self.config["width"] // self.config["heads"])
        if prefix:  # in-context tokens: identity rotation
            cos = torch.cat([cos.new_ones(prefix, cos.shape[1]), cos])
            sin = torch.cat([sin.new_zeros(prefix, sin.shape[1]), sin])
        partner, signed_sin = rope_pairs(cos.shape[1], sin)
        return cos, partner, signed_sin

    def patchify(self, z: torch.Tensor) -> torch.Tensor:
        b, c, _, _ = z.shape
        (gh, gw), p = self.grid, self.patch
        return z.reshape(b, c, gh, p, gw, p).permute(0, 2, 4, 3, 5, 1).reshape(b, gh * gw, p * p * c)

    def unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        c = self.shape[0]
        (gh, gw), p = self.grid, self.patch
        return x.reshape(-1, gh, gw, p, p, c).permute(0, 5, 1, 3, 2, 4).reshape(-1, c, gh * p, gw * p)

    def _forward(self, z: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        t_emb, y_emb = self.embed(t, y)
        cond = t_emb if y_emb is None else t_emb + y_emb
        x = self.embed_in(self.patchify(z))
        rope, prefix, feats = self._rope(0), 0, {}
        for i, block in enumerate(self.blocks):
            if self.ctx_tokens and i == self.ctx_start:
                ctx = self.ctx_pos.unsqueeze(0).expand(x.shape[0], -1, -1)
                if y_emb is not None:
                    ctx = ctx + y_emb.unsqueeze(1)
                x, prefix = torch.cat([ctx.to(x.dtype), x], dim=1), self.ctx_tokens
                rope = self._rope(prefix)
            x = block(x, cond, rope)
            feats[i] = x[:, prefix:]  # image tokens only (for LayerSync)
        if self.training and self.layersync is not None:
            weak, strong = self.layersync
            cos = F.cosine_similarity(feats[weak].float(), feats[strong].detach().float(), dim=-1)
            self.last_aux_loss = -self.layersync_lambda * cos.mean()
        return self.unpatchify(self.final(x[:, prefix:], cond))


@register_backbone("vit", presets=PRESETS)
def build_vit(shape: tuple[int, ...], num_classes: int = 0, size: str = "tiny", **overrides: Any) -> ViT:
    """JiT-style ViT for images (C, H, W): bottleneck patch embedding, adaLN-Zero blocks, 2-D RoPE."""
    p = resolve_params("vit", PRESETS, size, overrides)
    if len(shape) != 3:
        raise BackboneError(f"backbone vit needs images (C, H, W), got shape {tuple(shape)}: use --backbone mlp "
                            "for 1-D signals")
    for key in ("width", "depth", "heads", "patch", "bottleneck"):
        p[key] = as_int("vit", key, p[key], minimum=1)
    for key in ("in_context_tokens", "in_context_start"):
        p[key] = as_int("vit", key, p[key])
    p["mlp_ratio"] = as_float("vit", "mlp_ratio", p["mlp_ratio"], lo=1e-3)
    p["dropout"] = as_float("vit", "dropout", p["dropout"], hi=1.0)
    p["layersync_lambda"] = as_float("vit", "layersync_lambda", p["layersync_lambda"])
    c, h, w = shape
    if h % p["patch"] or w % p["patch"]:
        raise BackboneError(f"vit: patch size {p['patch']} does not divide the image size {h}x{w}")
    if p["width"] % p["heads"] or (p["width"] // p["heads"]) % 4:
        raise BackboneError(f"vit: width {p['width']} must be heads ({p['heads']}) x a multiple of 4 (2-D RoPE)")
    if p["in_context_tokens"] and p["in_context_start"] >= p["depth"]:
        raise BackboneError(f"vit: in_context_start {p['in_context_start']} must be < depth {p['depth']}")
    if p["layersync"] is not None:
        ls = p["layersync"]
        ints = all(isinstance(i, int) and not isinstance(i, bool) for i in ls) if isinstance(ls, tuple) else False
        if not ints or len(ls) != 2 or not 0 <= ls[0] < ls[1] < p["depth"]:
            raise BackboneError(f"vit: layersync must be (weak, strong) block indices with 0 <= weak < strong < depth "
                                f"{p['depth']}, got {ls!r}")
    config = {"name": "vit", "shape": tuple(shape), "num_classes": num_classes, "size": size, **p}
    return ViT(config)
