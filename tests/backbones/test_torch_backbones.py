"""Backbones: shapes, adaLN-Zero identity start, conditioning, 2-D RoPE, LayerSync, config round trip, errors."""
from __future__ import annotations

import json

import pytest
import torch

from hdfm_bench.backbones import BACKBONES, BackboneError, build_backbone, list_backbones
from hdfm_bench.backbones.vit import apply_rope_2d, rope_2d_tables

B = 5


CASES = [
    ("vit", (1, 28, 28), dict(patch=4, width=32, heads=2, depth=2, bottleneck=8)),
    ("vit", (3, 32, 32), dict(patch=4, width=32, heads=2, depth=3, bottleneck=8, in_context_tokens=2,
                              in_context_start=1)),
    ("unet", (1, 28, 28), dict(channels=16, channel_mult=(1, 2, 2))),
    ("unet", (3, 32, 32), dict(channels=16, channel_mult=(1, 2, 2, 2), attention_levels=(1, 3), heads=2)),
    ("mlp", (16,), dict(width=32, depth=3)),
]


IDS = [f"{n}-{'x'.join(map(str, s))}" for n, s, _ in CASES]


def _inputs(shape, seed=0, num_classes=10):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn((B, *shape), generator=g)
    t = torch.rand(B, generator=g)
    y = torch.tensor([0, 3, 9, num_classes, num_classes])  # includes the null class
    return z, t, y


def _perturb(model, scale=0.1, seed=1):
    """Random kick to every weight, so zero-initialised layers stop hiding the conditioning."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))


def test_registry():
    assert list_backbones() == ["vit", "unet", "mlp"]
    assert set(BACKBONES) == set(list_backbones())


@pytest.mark.parametrize("name,shape,params", CASES, ids=IDS)
@pytest.mark.parametrize("conditional", [True, False], ids=["cond", "uncond"])
def test_output_shape_and_finite(name, shape, params, conditional):
    torch.manual_seed(0)
    k = 10 if conditional else 0
    model = build_backbone(name, shape, num_classes=k, **params)
    _perturb(model)
    z, t, y = _inputs(shape)
    out = model(z, t, y if conditional else None)
    assert out.shape == z.shape
    assert torch.isfinite(out).all()
    assert out.abs().sum() > 0
    if conditional:  # y=None means all-null
        null = torch.full((B,), k, dtype=torch.long)
        torch.testing.assert_close(model(z, t), model(z, t, null))


@pytest.mark.parametrize("name,shape,params", CASES, ids=IDS)
def test_class_and_time_conditioning_matter(name, shape, params):
    torch.manual_seed(0)
    model = build_backbone(name, shape, num_classes=10, **params).eval()
    _perturb(model)
    z, t, _ = _inputs(shape)
    out0 = model(z, t, torch.zeros(B, dtype=torch.long))
    out3 = model(z, t, torch.full((B,), 3))
    out_null = model(z, t, None)
    assert (out0 - out3).abs().max() > 1e-4
    assert (out0 - out_null).abs().max() > 1e-4
    assert (model(z, torch.rand(B), torch.zeros(B, dtype=torch.long)) - out0).abs().max() > 1e-4


def _block_io(model, z, t, y):
    """(input, output) image tokens of every ViT block in one forward."""
    io = []
    n = model.grid[0] * model.grid[1]
    hooks = [b.register_forward_hook(lambda m, a, o: io.append((a[0][:, -n:].clone(), o[:, -n:].clone())))
             for b in model.blocks]
    out = model(z, t, y)
    for h in hooks:
        h.remove()
    return io, out


def test_vit_adaln_zero_starts_as_identity_then_learns_conditioning():
    torch.manual_seed(0)
    shape = (1, 28, 28)
    model = build_backbone("vit", shape, num_classes=10, in_context_tokens=2, in_context_start=1)
    z, t, y = _inputs(shape)
    io_a, out_a = _block_io(model, z, t, y)
    io_b, out_b = _block_io(model, z, 1 - t, torch.tensor([1, 2, 3, 4, 5]))
    assert len(io_a) == len(model.blocks)
    for (inp_a, outp_a), (_inp_b, outp_b) in zip(io_a, io_b):
        torch.testing.assert_close(outp_a, inp_a, rtol=0, atol=0)  # block is the identity
        torch.testing.assert_close(outp_a, outp_b, rtol=0, atol=0)  # ... whatever t and y are
    assert out_a.abs().max() == 0 and out_b.abs().max() == 0  # zero-init final layer

    # A few Adam steps on a random regression target: step 1 moves the final linear, step 2
    # then lets gradient reach the zero-init adaLN layers, so output depends on t and y.
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    target = torch.randn_like(z)
    for _ in range(3):
        opt.zero_grad()
        ((model(z, t, y) - target) ** 2).mean().backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        base = model(z, t, y)
        assert (model(z, 1 - t, y) - base).abs().max() > 1e-5
        assert (model(z, t, (y + 1) % 11) - base).abs().max() > 1e-5
    assert any((b.ada[1].weight.abs().sum() > 0) for b in model.blocks)


@pytest.mark.parametrize("shift", [(0, 0), (3, -2), (7, 11)])
def test_rope_2d_scores_invariant_to_common_shift(shift):
    torch.manual_seed(0)
    head_dim, n = 16, 12
    q, k = torch.randn(2, n, head_dim), torch.randn(2, n, head_dim)
    rows, cols = torch.randint(0, 8, (n,)), torch.randint(0, 8, (n,))
    tab = rope_2d_tables(rows, cols, head_dim)
    tab_s = rope_2d_tables(rows + shift[0], cols + shift[1], head_dim)
    scores = apply_rope_2d(q, *tab) @ apply_rope_2d(k, *tab).transpose(-1, -2)
    scores_s = apply_rope_2d(q, *tab_s) @ apply_rope_2d(k, *tab_s).transpose(-1, -2)
    torch.testing.assert_close(scores, scores_s, rtol=1e-4, atol=1e-4)
    # a rotation: norms preserved, and positions actually matter (not the identity map)
    torch.testing.assert_close(apply_rope_2d(q, *tab).norm(dim=-1), q.norm(dim=-1))
    moved = rope_2d_tables(rows + 1, cols, head_dim)
    assert (apply_rope_2d(q, *moved) @ apply_rope_2d(k, *tab).transpose(-1, -2) - scores).abs().max() > 1e-3


@pytest.mark.parametrize("ctx", [0, 2])
def test_layersync(ctx):
    torch.manual_seed(0)
    shape, lam = (1, 28, 28), 0.3
    model = build_backbone("vit", shape, num_classes=10, depth=3, layersync=(0, 2), layersync_lambda=lam,
                           in_context_tokens=ctx, in_context_start=1)
    _perturb(model)  # so h_weak != h_strong
    z, t, y = _inputs(shape)
    model.train()
    model(z, t, y)
    aux = model.last_aux_loss
    assert aux is not None and aux.dim() == 0 and torch.isfinite(aux)
    assert -lam - 1e-6 <= aux.item() <= lam + 1e-6
    assert aux.item() > -lam + 1e-4  # features differ, so cos < 1
    aux.backward()
    grads = [p.grad for p in model.blocks[0].parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.blocks[2].parameters())  # stop-grad
    model.eval()
    model(z, t, y)
    assert model.last_aux_loss is None
    plain = build_backbone("vit", shape, num_classes=10, depth=3).train()
    plain(z, t, y)
    assert plain.last_aux_loss is None


@pytest.mark.parametrize("name,shape,params", CASES, ids=IDS)
def test_config_rebuild_round_trip(name, shape, params):
    torch.manual_seed(0)
    model = build_backbone(name, shape, num_classes=10, **params).eval()
    _perturb(model)
    config = json.loads(json.dumps(model.config))  # JSON-serialisable, survives the trip
    assert config["name"] == name and tuple(config["shape"]) == shape and config["num_classes"] == 10
    rebuilt = build_backbone(**config).eval()
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    z, t, y = _inputs(shape)
    torch.testing.assert_close(rebuilt(z, t, y), model(z, t, y))


def test_vit_tiny_parameter_count():
    model = build_backbone("vit", (1, 28, 28), num_classes=10, size="tiny", patch=4)
    n = sum(p.numel() for p in model.parameters())
    assert 0.3e6 <= n <= 0.8e6, n


@pytest.mark.parametrize("call,words", [
    (lambda: build_backbone("resnet", (1, 28, 28)), ["unknown backbone 'resnet'", "vit, unet, mlp"]),
    (lambda: build_backbone("vit", (1, 28, 28), widht=64), ["unknown parameter", "widht"]),
    (lambda: build_backbone("unet", (1, 28, 28), size="huge"), ["unknown size", "huge"]),
    (lambda: build_backbone("vit", (1, 28, 28), patch=5), ["patch size 5", "28x28"]),
    (lambda: build_backbone("unet", (1, 28, 28), channel_mult=(1, 2, 2, 2)), ["not divisible", "8"]),
    (lambda: build_backbone("mlp", (1, 28, 28)), ["mlp", "1-D shape"]),
    (lambda: build_backbone("vit", (16,)), ["vit", "needs images (C, H, W)", "--backbone mlp"]),
    (lambda: build_backbone("unet", (16,)), ["unet", "needs images (C, H, W)", "--backbone mlp"]),
    (lambda: build_backbone("vit", (1, 28, 28), depth=3, layersync=(2, 1)), ["layersync"]),
    (lambda: build_backbone("mlp", (16,), num_classes=10)(torch.randn(2, 16), torch.rand(2), torch.tensor([0, 11])),
     ["y out of range", "[0, 10]"]),
    (lambda: build_backbone("mlp", (16,), num_classes=10)(torch.randn(2, 16), torch.rand(2), torch.tensor([-1, 0])),
     ["y out of range"]),
    (lambda: build_backbone("vit", (1, 28, 28))(torch.randn(2, 1, 28, 28), torch.rand(2), torch.tensor([0, 1])),
     ["unconditional", "y given"]),
    (lambda: build_backbone("mlp", (16,))(torch.randn(2, 8), torch.rand(2)), ["does not match"]),
], ids=["name", "param", "size", "patch", "unet-div", "mlp-image", "vit-1d", "unet-1d", "layersync",
        "y-high", "y-neg", "y-uncond", "input-shape"])
def test_errors_are_one_line_backbone_errors(call, words):
    with pytest.raises(BackboneError) as info:
        call()
    msg = str(info.value)
    assert isinstance(info.value, ValueError)
    assert "\n" not in msg
    for w in words:
        assert w in msg, (w, msg)
