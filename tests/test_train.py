"""Trainer: every path learns, exact kill-and-resume, checkpoint damage, failure records, EMA, CFG."""
import json
import subprocess
import sys

import pytest
import torch

from bench import checkpoint
from bench.config import RunConfig, RunConfigError
from bench.sample import Guided, generate, write_samples
from bench.train import EMA, Interrupted, TrainingFailed, build, train
from methods import get_sampler

TINY_VIT = {"size": "tiny", "patch": 2, "width": 32, "depth": 2, "heads": 2, "bottleneck": 16}
SMALL = {"ihdm": {"K": 10, "sigma_blur_max": 4.0}, "cold_blur": {"T": 6}}


def cfg_for(tmp_path, path="noise_fm", **kw):
    base = dict(task="digits", path=path, path_params=SMALL.get(path, {}), backbone="vit",
                backbone_params=TINY_VIT, steps=40, batch_size=64, lr=3e-3, warmup=5,
                checkpoint_every=20, out_dir=str(tmp_path), ema_decays=(0.9, 0.99))
    base.update(kw)
    return RunConfig.from_mapping(base)


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


def test_non_finite_loss_stops_and_records_failure(tmp_path, monkeypatch):
    from methods import Objective

    real = Objective.loss
    calls = {"n": 0}

    def poisoned(self, *a, **k):
        calls["n"] += 1
        out = real(self, *a, **k)
        return out * float("nan") if calls["n"] == 4 else out

    monkeypatch.setattr(Objective, "loss", poisoned)
    cfg = cfg_for(tmp_path, steps=10)
    with pytest.raises(TrainingFailed, match="non-finite loss at step 3"):
        train(cfg, progress=False)
    rec = json.loads((cfg.run_dir() / "run.json").read_text())
    assert rec["status"] == "failed" and rec["failed_step"] == 3 and rec["last_finite_loss"] > 0


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


def test_cfg_arithmetic_interval_and_nfe():
    class Fake(torch.nn.Module):  # output = class id (null = 10) broadcast
        def forward(self, z, t, y):
            return y.float().reshape(-1, 1, 1, 1).expand_as(z).clone()

    y = torch.tensor([3, 7])
    g = Guided(Fake(), y, null=10, scale=2.5, interval=(0.1, 1.0))
    z = torch.zeros(2, 1, 2, 2)
    inside = g(z, torch.tensor([0.5, 0.5]))
    torch.testing.assert_close(inside[:, 0, 0, 0], 10 + 2.5 * (y.float() - 10))
    outside = g(z, torch.tensor([0.05, 0.05]))  # t <= 0.1: no guidance, the conditional output
    torch.testing.assert_close(outside[:, 0, 0, 0], y.float())
    assert g.evals_per_call == 2
    from methods import get_path

    res = get_sampler("heun", steps=5).sample(get_path("noise_fm"), g, torch.zeros(2, 1, 2, 2), "x")
    assert res.calls == 9 and res.nfe == 18
    assert Guided(Fake(), y, null=10, scale=1.0).evals_per_call == 1
    with pytest.raises(ValueError, match="class-conditional"):
        Guided(Fake(), None, None, scale=2.0)


def test_sample_writes_grid_and_protocol(tmp_path):
    """Also: output stems may contain dots (cfg1.5)."""
    cfg = cfg_for(tmp_path, "hdfm", steps=3)
    res = train(cfg, progress=False)
    out = generate(res.run_dir, sampler="heun", steps=3, cfg_scale=2.0, ema=0.99, n=20, seed=1)
    assert out["samples"].shape == (20, 1, 8, 8) and out["samples"].abs().max() <= 1
    assert out["protocol"]["nfe"] == 2 * 5 and out["protocol"]["checkpoint_step"] == 3
    files = write_samples(out, tmp_path / "s" / "grid-cfg1.5")
    assert files["grid"].name == "grid-cfg1.5.png" and files["samples"].name == "grid-cfg1.5.pt"
    assert files["grid"].read_bytes()[:4] == b"\x89PNG"
    assert json.loads(files["protocol"].read_text())["cfg_scale"] == 2.0
    # The same seed gives the same samples.
    again = generate(res.run_dir, sampler="heun", steps=3, cfg_scale=2.0, ema=0.99, n=20, seed=1)
    torch.testing.assert_close(again["samples"], out["samples"])


@pytest.mark.parametrize("path", ["ihdm", "cold_blur", "blurring_diffusion", "hdfm_code"])
def test_default_samplers_run_from_checkpoints(tmp_path, path):
    res = train(cfg_for(tmp_path, path, steps=2), progress=False)
    out = generate(res.run_dir, n=4)
    assert out["samples"].shape == (4, 1, 8, 8) and torch.isfinite(out["samples"]).all()


def test_config_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('path = "hdfm"\nstepz = 3\n')
    with pytest.raises(RunConfigError, match="unknown key 'stepz'"):
        RunConfig.load(bad)
    bad.write_text('steps = "many"\n')
    with pytest.raises(RunConfigError, match="'steps' expects int"):
        RunConfig.load(bad)
    bad.write_text("steps = [\n")
    with pytest.raises(RunConfigError, match="invalid TOML"):
        RunConfig.load(bad)
    with pytest.raises(RunConfigError, match="config file not found"):
        RunConfig.load(tmp_path / "missing.toml")
    with pytest.raises(RunConfigError, match="lr must be > 0"):
        RunConfig.load(None, ["lr=0"])
    good = tmp_path / "good.toml"
    good.write_text('path = "hdfm"\nsteps = 5\n[path_params]\na = 0.25\n')
    c = RunConfig.load(good, ["path_params.t_min=0.001", "steps=6"])
    assert (c.path, c.steps, c.path_params) == ("hdfm", 6, {"a": 0.25, "t_min": 0.001})
    assert c.run_id() != RunConfig.load(good).run_id()
    assert c.run_id() == RunConfig.load(good, ["path_params.t_min=0.001", "steps=6", "checkpoint_every=7"]).run_id()


def test_cli_train_and_sample_end_to_end(tmp_path):
    common = [sys.executable, "-m", "bench.cli"]
    res = subprocess.run(common + ["train", "--task", "digits", "--path", "noise_fm", "--steps", "3",
                                   "--batch-size", "16", "--backbone-params", "patch=2", "--backbone-params",
                                   "width=32", "--backbone-params", "depth=1", "--out-dir", str(tmp_path),
                                   "--no-progress"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    run_dir = next(tmp_path.iterdir())
    res = subprocess.run(common + ["sample", str(run_dir), "--steps", "2", "-n", "10", "--cfg-scale", "1.5"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "NFE counted" in res.stdout and list((run_dir / "samples").glob("*.png"))
    res = subprocess.run(common + ["train", "--path", "ihdm", "--target", "v", "--task", "digits",
                                   "--out-dir", str(tmp_path)], capture_output=True, text=True)
    assert res.returncode == 2 and "cannot use target 'v'" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
