"""FID / KID / PR through torch-fidelity with the project's extractors."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from hdfm_bench.core.hashing import state_sha256
from hdfm_bench.evaluation.metrics import domain_cnn, fidelity_adapters
from hdfm_bench.evaluation.metrics import extractors as ex
from hdfm_bench.evaluation.metrics.fidelity import MetricError, classifier_accuracy, compute_metrics, reference_features
from hdfm_bench.tasks import get_task


@pytest.fixture(scope="module")
def digits_u8():
    task = get_task("digits")
    x, y = task.load("train")
    return task.to_uint8(x), y


def _noisy(x_u8, sigma, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (x_u8.float() + sigma * torch.randn(x_u8.shape, generator=g)).round().clamp(0, 255).to(torch.uint8)


def test_identical_sets_give_zero_distance_and_full_precision_recall(digits_u8):
    x, _ = digits_u8
    m = compute_metrics(generated=x.clone(), reference=x, extractor="domain-digits", kid_subset_size=500)
    assert abs(m["fid"]) < 1e-3
    assert abs(m["kid_mean"]) < 1e-2  # unbiased estimator: ±noise, ~0.05 at sigma=40 noise
    assert m["precision"] == pytest.approx(1.0) and m["recall"] == pytest.approx(1.0)
    assert m["extractor"] == "domain-digits" and len(m["extractor_hash"]) == 16
    assert m["n_real"] == m["n_fake"] == len(x)
    assert all(isinstance(m[k], float) for k in ("fid", "kid_mean", "kid_std", "precision", "recall"))


def test_digits_fid_grows_with_degradation(digits_u8):
    x, _ = digits_u8
    blurred = F.avg_pool2d(x.float(), 3, stride=1, padding=1, count_include_pad=False).round().to(torch.uint8)
    fids = [compute_metrics(generated=f, reference=x, extractor="domain-digits", metrics=("fid",))["fid"]
            for f in (_noisy(x, 10), _noisy(x, 40), _noisy(x, 120))]
    fid_blur = compute_metrics(generated=blurred, reference=x, extractor="domain-digits", metrics=["fid"])["fid"]
    assert fids[0] > 1e-2 and fid_blur > 1e-2
    assert fids[0] < fids[1] < fids[2]


def test_shipped_classifier_is_pinned_and_reference_cache_reused(digits_u8, tmp_path, monkeypatch):
    x, _ = digits_u8
    _, info = ex.domain_classifier("domain-digits")
    assert Path(info["path"]).parent == ex.WEIGHTS_DIR and ex.file_sha256(info["path"]) == ex.EXTRACTORS[
        "domain-digits"]["sha256"]
    # a row's extractor_hash is the hash of the weights' values, recorded with the file
    assert info["hash"] == state_sha256(torch.load(info["path"], weights_only=True))[:16] == info["weights_sha256"][:16]
    assert ex.domain_classifier("digits")[1]["hash"] == info["hash"]
    assert info["test_accuracy"] >= 0.9 and info["recipe"] == ex.RECIPES["digits"]
    feats, key = reference_features("digits", "train", "domain-digits", with_key=True)
    assert feats.shape == (len(x), 128) and feats.dtype == torch.float64
    feats2, key2 = reference_features("digits", "train", "domain-digits", with_key=True)
    assert key2 == key and torch.equal(feats, feats2)
    fake = _noisy(x[:600], 30)
    via_ref = compute_metrics(generated=fake, reference="digits:train", extractor="domain-digits", kid_subset_size=500)
    via_img = compute_metrics(generated=fake, reference=x, extractor="domain-digits", kid_subset_size=500)
    assert via_ref["reference_hash"] == key
    for k in ("fid", "kid_mean", "kid_std", "precision", "recall", "n_real", "n_fake"):
        assert via_ref[k] == via_img[k]
    # a changed weights file is refused, never measured with
    changed = tmp_path / "weights"
    changed.mkdir()
    for f in ex.WEIGHTS_DIR.iterdir():
        (changed / f.name).write_bytes(f.read_bytes())
    state = torch.load(changed / "domain-digits.pt", weights_only=True)
    state["head.bias"] += 1e-3
    torch.save(state, changed / "domain-digits.pt")
    monkeypatch.setattr(ex, "WEIGHTS_DIR", changed)
    monkeypatch.setattr(ex, "_LOADED", {})
    with pytest.raises(MetricError, match="domain-digits.*not the pinned"):
        ex.domain_classifier("domain-digits")
    (changed / "domain-mnist.pt").unlink()
    with pytest.raises(MetricError, match="weights of extractor 'domain-mnist' are missing"):
        ex.domain_classifier("domain-mnist")


def test_train_extractor_writes_the_file_that_gets_shipped(tmp_path, capsys):
    from hdfm_bench.cli import main

    out = tmp_path / "domain-digits.pt"
    _, info = ex.domain_classifier("domain-digits")
    # with the thread count the shipped file was trained with: CPU sums depend on it
    assert main(["train-extractor", "digits", "--out", str(out), "--threads", str(info["threads"])]) == 0
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["sha256"] == ex.file_sha256(out) and meta["sha256"] in capsys.readouterr().out
    assert meta["test_accuracy"] >= 0.9 and meta["recipe"] == domain_cnn.RECIPES["digits"]
    assert meta["arch"] == domain_cnn.DomainCNN.ARCH and meta["threads"] == info["threads"]
    model = domain_cnn.DomainCNN(8)
    model.load_state_dict(torch.load(out, weights_only=True))  # the shipped format: a plain state_dict
    shipped, _ = ex.domain_classifier("domain-digits")
    assert model.state_dict().keys() == shipped.state_dict().keys()
    # Retraining on this machine gives the shipped weights exactly: the same value hash, although the
    # file's bytes differ (torch.save writes the temporary name of the atomic write into the archive).
    assert meta["weights_sha256"] == info["weights_sha256"]
    assert all(torch.equal(v, shipped.state_dict()[k]) for k, v in model.state_dict().items())
    assert main(["train-extractor", "cifar10", "--out", str(tmp_path / "c.pt")]) == 2
    assert "no domain classifier is defined for task 'cifar10'" in capsys.readouterr().err
    assert main(["train-extractor", "digits", "--out", str(tmp_path / "c.pth")]) == 2
    assert not (tmp_path / "c.pt").exists() and not (tmp_path / "c.pth").exists()


def test_mnist_halves_far_closer_than_noise_and_classifier_accurate():
    task = get_task("mnist")
    x, y = task.load("test")
    u8 = task.to_uint8(x)
    _, info = ex.domain_classifier("domain-mnist")  # the shipped weights
    assert info["test_accuracy"] >= 0.98
    assert classifier_accuracy(u8, y, "domain-mnist") >= 0.98
    noise = torch.randint(0, 256, (5000, 1, 28, 28), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    halves = compute_metrics(generated=u8[5000:], reference=u8[:5000], extractor="domain-mnist", metrics=("fid",
                                                                                                          ))["fid"]
    vs_noise = compute_metrics(generated=noise, reference=u8[:5000], extractor="domain-mnist", metrics=("fid",))["fid"]
    assert 20 * halves < vs_noise


def _fake_inception(tmp_path):
    class Probe(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = torch.zeros(x.shape[0], 2048)
            flat = x.reshape(x.shape[0], -1)
            out[:, 0] = flat.min(dim=1).values
            out[:, 1] = flat.max(dim=1).values
            out[:, 2] = float(x.shape[1])
            out[:, 3] = float(x.shape[2])
            out[:, 4] = float(x.shape[3])
            return out

    path = tmp_path / "fake_inception.pt"
    torch.jit.script(Probe()).save(str(path))
    return path


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_inception_offline_wrapper_with_fake_module(tmp_path, monkeypatch):
    path = _fake_inception(tmp_path)
    fe = fidelity_adapters.InceptionOfflineExtractor("hdfm-inception-offline", ["2048"],
                                                     feature_extractor_weights_path=str(path))
    x = torch.stack([torch.zeros(1, 8, 8), torch.full((1, 8, 8), 255.0)]).to(torch.uint8)
    (f,) = fe(x)
    assert f.shape == (2, 2048) and f.dtype == torch.float64
    assert f[0, 0] == -1.0 and f[0, 1] == -1.0
    assert f[1, 0] == 0.9921875 and f[1, 1] == 0.9921875
    assert f[:, 2:5].tolist() == [[3.0, 299.0, 299.0]] * 2  # grey → RGB, resized to 299
    big = torch.full((2, 3, 299, 299), 128, dtype=torch.uint8)
    assert fe(big)[0][:, :2].abs().max() == 0  # (128 - 128) / 128, no resize needed
    # through compute_metrics, the module injected by the environment variable (no download)
    monkeypatch.setenv(ex.INCEPTION_OFFLINE_ENV, str(path))
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 256, (4, 1, 12, 12), generator=g, dtype=torch.uint8)
    m = compute_metrics(generated=a.clone(), reference=a, extractor="inception-offline", metrics=("fid", "prc"),
                        batch_size=2)
    assert abs(m["fid"]) < 1e-6 and m["precision"] == 1.0 and m["n_fake"] == 4


def _err(fn):
    with pytest.raises(MetricError) as info:
        fn()
    msg = str(info.value)
    assert msg and "\n" not in msg
    return msg


def test_errors_are_one_line_metric_errors(digits_u8, monkeypatch):
    x, _ = digits_u8
    x = x[:100]
    assert "uint8" in _err(lambda: compute_metrics(generated=x, reference=x.float(), extractor="domain-digits",
                                                   metrics=("fid",)))
    assert "uint8" in _err(lambda: compute_metrics(generated=x.float(), reference=x, extractor="domain-digits",
                                                   metrics=("fid",)))
    assert "(N, C, H, W)" in _err(lambda: compute_metrics(generated=x, reference=x[:, 0], extractor="domain-digits",
                                                          metrics=("fid",)))
    wider = torch.zeros(100, 1, 9, 9, dtype=torch.uint8)
    assert "differ" in _err(lambda: compute_metrics(generated=x, reference=wider, extractor="domain-digits",
                                                    metrics=("fid",)))
    assert "unknown extractor" in _err(lambda: compute_metrics(generated=x, reference=x, extractor="nope",
                                                               metrics=("fid",)))
    assert "unknown metric" in _err(lambda: compute_metrics(generated=x, reference=x, extractor="domain-digits",
                                                            metrics=("isc",)))
    msg = _err(lambda: compute_metrics(generated=x, reference=x, extractor="domain-digits", metrics=("kid",),
                                       kid_subset_size=1000))
    assert "kid_subset_size" in msg and "smaller" in msg
    mnist_sized = torch.zeros(100, 1, 28, 28, dtype=torch.uint8)
    assert "trained on" in _err(lambda: compute_metrics(generated=mnist_sized, reference=mnist_sized,
                                                        extractor="domain-digits", metrics=("fid",)))
    assert "at least 2" in _err(lambda: compute_metrics(generated=x[:1], reference=x[:1], extractor="domain-digits",
                                                        metrics=("fid",)))
    monkeypatch.delenv(ex.INCEPTION_WEIGHTS_ENV, raising=False)
    assert ex.INCEPTION_WEIGHTS_ENV in _err(lambda: compute_metrics(generated=x, reference=x, extractor="inception",
                                                                    metrics=("fid",)))
