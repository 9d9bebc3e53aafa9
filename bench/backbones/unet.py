"""ADM-style UNet (Dhariwal & Nichol 2021, "Diffusion Models Beat GANs"), as used by IHDM (Rissanen et al. 2023).

Residual blocks with scale-shift (FiLM) conditioning on t_emb + class_emb, self-attention at
chosen resolutions, stride-2 conv downsampling, nearest x2 + conv upsampling, and skip
connections concatenated in the decoder.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hdfm_bench.backbones.layers import Backbone
from hdfm_bench.backbones.params import BackboneError, as_float, as_int, resolve_params
from hdfm_bench.backbones.registry import register_backbone

PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(channels=32, channel_mult=(1, 2, 2), num_res_blocks=1, attention_levels=(2,), dropout=0.0,
                 heads=1, groups=32),
    "ihdm_mnist": dict(channels=128, channel_mult=(1, 2, 2), num_res_blocks=4, attention_levels=(2,), dropout=0.1,
                       heads=1, groups=32),
    "ihdm_cifar10": dict(channels=128, channel_mult=(1, 2, 2, 2), num_res_blocks=4, attention_levels=(2, 3),
                         dropout=0.1, heads=1, groups=32),
}


def group_norm(channels: int, groups: int) -> nn.GroupNorm:
    """GroupNorm with the largest group count <= ``groups`` that divides ``channels``."""
    g = max(d for d in range(1, min(groups, channels) + 1) if channels % d == 0)
    return nn.GroupNorm(g, channels)


def _zero(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class ResBlock(nn.Module):
    """ADM residual block: GN-SiLU-conv3, scale-shift by the embedding, GN-SiLU-dropout-conv3 (zero-init) + skip."""

    def __init__(self, cin: int, cout: int, emb_dim: int, dropout: float, groups: int) -> None:
        super().__init__()
        self.in_layers = nn.Sequential(group_norm(cin, groups), nn.SiLU(), nn.Conv2d(cin, cout, 3, padding=1))
        self.emb = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, 2 * cout))
        self.out_norm = group_norm(cout, groups)
        self.out_layers = nn.Sequential(nn.SiLU(), nn.Dropout(dropout), _zero(nn.Conv2d(cout, cout, 3, padding=1)))
        self.skip = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.in_layers(x)
        scale, shift = self.emb(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.out_norm(h) * (1 + scale) + shift  # scale-shift norm (ADM's use_scale_shift_norm)
        return self.skip(x) + self.out_layers(h)


class AttnBlock(nn.Module):
    """Spatial multi-head self-attention with a residual, output projection zero-init (ADM)."""

    def __init__(self, channels: int, heads: int, groups: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm = group_norm(channels, groups)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = _zero(nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w).transpose(-1, -2).unbind(1)
        out = F.scaled_dot_product_attention(q, k, v)  # (b, heads, hw, c/heads)
        return x + self.proj(out.transpose(-1, -2).reshape(b, c, h, w))


class Downsample(nn.Module):
    """Stride-2 3x3 convolution (odd sizes round up: 7 -> 4 is refused earlier by the divisibility check)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Nearest-neighbour x2 followed by a 3x3 convolution."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class Stage(nn.ModuleList):
    """A sequence of layers that each take (x, emb)."""

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        for layer in self:
            x = layer(x, emb)
        return x


class UNet(Backbone):
    """ADM UNet: conv_in -> encoder (res[+attn] x n, downsample) -> middle (res, attn, res) -> decoder -> conv_out.

    The embedding (dim 4 * channels) is t_emb + class_emb; the output conv is zero-init.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        p = config
        ch0, emb_dim, groups = p["channels"], 4 * p["channels"], p["groups"]
        super().__init__(config, cond_dim=emb_dim, freq_dim=ch0)
        c = self.shape[0]
        mults, nres, attn = p["channel_mult"], p["num_res_blocks"], set(p["attention_levels"])
        drop, heads = p["dropout"], p["heads"]

        self.conv_in = nn.Conv2d(c, ch0, 3, padding=1)
        self.down = nn.ModuleList()
        skips, ch = [ch0], ch0
        for level, mult in enumerate(mults):
            for _ in range(nres):
                stage = Stage([ResBlock(ch, ch0 * mult, emb_dim, drop, groups)])
                ch = ch0 * mult
                if level in attn:
                    stage.append(AttnBlock(ch, heads, groups))
                self.down.append(stage)
                skips.append(ch)
            if level != len(mults) - 1:
                self.down.append(Stage([Downsample(ch)]))
                skips.append(ch)
        self.middle = Stage([ResBlock(ch, ch, emb_dim, drop, groups), AttnBlock(ch, heads, groups),
                             ResBlock(ch, ch, emb_dim, drop, groups)])
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(mults))):
            for i in range(nres + 1):
                stage = Stage([ResBlock(ch + skips.pop(), ch0 * mult, emb_dim, drop, groups)])
                ch = ch0 * mult
                if level in attn:
                    stage.append(AttnBlock(ch, heads, groups))
                if level and i == nres:
                    stage.append(Upsample(ch))
                self.up.append(stage)
        self.out = nn.Sequential(group_norm(ch, groups), nn.SiLU(), _zero(nn.Conv2d(ch, c, 3, padding=1)))

    def _forward(self, z: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        t_emb, y_emb = self.embed(t, y)
        emb = t_emb if y_emb is None else t_emb + y_emb
        h = self.conv_in(z)
        hs = [h]
        for stage in self.down:
            h = stage(h, emb)
            hs.append(h)
        h = self.middle(h, emb)
        for stage in self.up:
            h = stage(torch.cat([h, hs.pop()], dim=1), emb)
        return self.out(h)


@register_backbone("unet", presets=PRESETS)
def build_unet(shape: tuple[int, ...], num_classes: int = 0, size: str = "tiny", **overrides: Any) -> UNet:
    """ADM-style U-Net for images (C, H, W), as in IHDM: residual blocks, attention at low resolution."""
    p = resolve_params("unet", PRESETS, size, overrides)
    if len(shape) != 3:
        raise BackboneError(f"backbone unet needs images (C, H, W), got shape {tuple(shape)}: use --backbone mlp "
                            "for 1-D signals")
    for key in ("channels", "num_res_blocks", "heads", "groups"):
        p[key] = as_int("unet", key, p[key], minimum=1)
    p["dropout"] = as_float("unet", "dropout", p["dropout"], hi=1.0)
    for key in ("channel_mult", "attention_levels"):
        if not isinstance(p[key], tuple):
            raise BackboneError(f"unet: parameter {key!r} must be a tuple of integers, got {p[key]!r}")
        p[key] = tuple(as_int("unet", key, v) for v in p[key])
    if not p["channel_mult"] or min(p["channel_mult"]) < 1:
        raise BackboneError(f"unet: channel_mult must be a non-empty tuple of positive integers, got "
                            f"{p['channel_mult']}")
    if any(lv >= len(p["channel_mult"]) for lv in p["attention_levels"]):
        raise BackboneError(f"unet: attention_levels {p['attention_levels']} must index channel_mult "
                            f"(0..{len(p['channel_mult']) - 1})")
    if any((p["channels"] * m) % p["heads"] for m in p["channel_mult"]):
        raise BackboneError(f"unet: heads {p['heads']} must divide every level's channel count")
    _, h, w = shape
    factor = 2 ** (len(p["channel_mult"]) - 1)
    if h % factor or w % factor:
        raise BackboneError(f"unet: image size {h}x{w} is not divisible by 2**(len(channel_mult)-1) = {factor}")
    config = {"name": "unet", "shape": tuple(shape), "num_classes": num_classes, "size": size, **p}
    return UNet(config)
