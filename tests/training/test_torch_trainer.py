"""The torch trainer: every path learns, exact kill-and-resume, checkpoint damage, failure records, EMA."""
from __future__ import annotations

import json

import pytest
import torch

from hdfm_bench.training import Interrupted, TrainingFailed, build, checkpoint, train
from hdfm_bench.training.torch_trainer import EMA
from tests.training.helpers import cfg_for


def _fixed_eval_loss(cfg, model):
    """Loss on a fixed batch (fixed x, ε, t): a noise-free measure of learning."""
    task, path, objective, _ = build(cfg)
    x, y = task.load("train")
    g = torch.Generator().manual_seed(123)
    x, y = x[:256], y[:256]
    eps = torch.randn(x.shape, generator=g)
    t = path.sample_t(torch.rand(len(x), generator=g))
    z = path.corrupt(x, eps, t)
    with torch.no_grad():
        return float(objective.loss(model(z, t, y if cfg.conditional else None), x, eps, t, z).mean())


@pytest.mark.parametrize("path,target,loss", [
    ("noise_fm", "x", "v"), ("noise_fm", "eps", "eps"), ("noise_fm", "v", "v"), ("hdfm", "x", "v"),
    ("hdfm_code", "x", "v"), ("blurring_diffusion", "eps", "eps"), ("ihdm", "prev_mean", "prev_mean"),
    ("ihdm", "x", "x"), ("cold_blur", "x", "x"),
])
def test_every_path_learns_on_digits(tmp_path, path, target, loss):
    cfg = cfg_for(tmp_path, path, target=target, loss=loss)
    _, _, _, fresh = build(cfg)
    before = _fixed_eval_loss(cfg, fresh.eval())
    res = train(cfg, progress=False)
    after = _fixed_eval_loss(cfg, res.model)
    assert after < 0.9 * before, f"{path}: fixed-batch loss {before:.4g} -> {after:.4g}"
    rec = json.loads((res.run_dir / "run.json").read_text())
    assert rec["status"] == "done" and rec["budget"]["images_seen"] == 40 * 64
    assert rec["budget"]["parameters"] == sum(p.numel() for p in res.model.parameters())
    assert rec["budget"]["wall_time_s"] > 0 and rec["budget"]["backbone"]["name"] == "vit"


def test_toy_trains_with_the_mlp(tmp_path):
    cfg = cfg_for(tmp_path, "hdfm", task="toy", task_params={"dim": 8, "n_train": 2000}, backbone="mlp",
                  backbone_params={"width": 64}, conditional=False)
    _, _, _, fresh = build(cfg)
    before = _fixed_eval_loss(cfg, fresh.eval())
    res = train(cfg, progress=False)
    assert _fixed_eval_loss(cfg, res.model) < 0.9 * before


def _weights(run_dir):
    state = checkpoint.load(run_dir / "checkpoint.pt")
    return state["model"], state["ema"], state["optimizer"]


def test_kill_and_resume_equals_uninterrupted(tmp_path):
    full = cfg_for(tmp_path / "a", steps=7, checkpoint_every=2)
    train(full, progress=False)
    cut = cfg_for(tmp_path / "b", steps=7, checkpoint_every=2)
    with pytest.raises(Interrupted):
        train(cut, progress=False, stop_at=5)  # killed after the step-4 checkpoint, step 5 lost
    assert checkpoint.load(cut.run_dir() / "checkpoint.pt")["step"] == 4
    train(cut, progress=False)  # the same command again: resumes at step 4
    (m1, e1, o1), (m2, e2, o2) = _weights(full.run_dir()), _weights(cut.run_dir())
    for k in m1:
        torch.testing.assert_close(m1[k], m2[k], atol=1e-6, rtol=0)
    for d in e1:
        for k in e1[d]:
            torch.testing.assert_close(e1[d][k], e2[d][k], atol=1e-6, rtol=0)
    assert o1["state"].keys() == o2["state"].keys()
    # A finished run returns at once without training further.
    again = train(cut, progress=False)
    assert again.record["status"] == "done"


def test_corrupt_checkpoint_is_an_error_not_a_restart(tmp_path):
    cfg = cfg_for(tmp_path, steps=4, checkpoint_every=2)
    train(cfg, progress=False)
    ck = cfg.run_dir() / "checkpoint.pt"
    data = ck.read_bytes()
    ck.write_bytes(data[: len(data) // 2])
    with pytest.raises(checkpoint.CheckpointError, match="corrupt or truncated"):
        train(cfg, progress=False)
    assert ck.read_bytes() == data[: len(data) // 2]  # nothing overwritten
    ck.write_bytes(b"not a checkpoint at all")
    with pytest.raises(checkpoint.CheckpointError, match=str(ck.name)):
        checkpoint.load(ck)


@pytest.mark.parametrize("log_every", [1, 4, 10])
def test_non_finite_loss_stops_and_records_failure(tmp_path, monkeypatch, log_every):
    """The loss is read back every ``log_every`` steps; the record still names the first bad step and the
    last finite loss, and no checkpoint holding the poisoned weights is written."""
    from hdfm_bench.methods import Objective

    real = Objective.loss
    calls = {"n": 0}

    def poisoned(self, *a, **k):
        calls["n"] += 1
        out = real(self, *a, **k)
        return out * float("nan") if calls["n"] == 4 else out

    monkeypatch.setattr(Objective, "loss", poisoned)
    cfg = cfg_for(tmp_path, steps=10, log_every=log_every, checkpoint_every=5)
    losses = []
    with pytest.raises(TrainingFailed, match="non-finite loss at step 3"):
        train(cfg, progress=False, on_step=lambda step, loss: losses.append(loss))
    rec = json.loads((cfg.run_dir() / "run.json").read_text())
    assert rec["status"] == "failed" and rec["failed_step"] == 3
    assert len(losses) == 3 and rec["last_finite_loss"] == losses[-1] > 0
    assert not (cfg.run_dir() / "checkpoint.pt").exists()


def test_ema_arithmetic():
    model = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema = EMA(model, 0.9, warmup=False)
    with torch.no_grad():
        model.weight.fill_(3.0)
    ema.update(model)
    torch.testing.assert_close(ema.model.weight, torch.full((1, 2), 0.9 * 1 + 0.1 * 3))
    warm = EMA(model, 0.999)  # k-diffusion warm-up: first decay = 1/10
    assert warm.current_decay() == pytest.approx(0.1)
    for _ in range(10_000):
        warm.updates += 1
    assert warm.current_decay() == 0.999
