"""Reference statistics files (mu, sigma; the pytorch-fid / EDM / ADM format): FID from them equals FID
from features, a set against its own statistics is ≈ 0, and bad files are one-line errors."""
from __future__ import annotations

import numpy as np
import pytest

from hdfm_bench.cli import main
from hdfm_bench.evaluation.metrics.errors import MetricError
from hdfm_bench.evaluation.metrics.fidelity import compute_metrics
from hdfm_bench.evaluation.reference_stats import reference_statistics
from hdfm_bench.tasks import get_task


@pytest.fixture(scope="module")
def digits():
    task = get_task("digits")
    return task.to_uint8(task.load("test")[0]), task.to_uint8(task.load("train")[0])


@pytest.fixture(scope="module")
def stats(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stats")
    plain = reference_statistics("digits", folder / "digits-test.npz", extractor="domain-digits")
    feats = reference_statistics("digits", folder / "digits-test-features.npz", extractor="domain-digits",
                                 with_features=True)
    return plain["path"], feats["path"]


def test_fid_from_statistics_equals_fid_from_features(digits, stats):
    test_u8, train_u8 = digits
    via_split = compute_metrics(generated=train_u8[:300], reference="digits:test", extractor="domain-digits",
                                metrics=("fid",))
    via_file = compute_metrics(generated=train_u8[:300], reference=str(stats[0]), extractor="domain-digits",
                               metrics=("fid",))
    assert via_file["fid"] == pytest.approx(via_split["fid"], rel=1e-9) and via_split["fid"] > 0.1
    assert via_file["reference_hash"] != via_split["reference_hash"] and via_file["n_real"] == len(test_u8)


def test_a_set_against_its_own_statistics_is_zero(digits, stats):
    test_u8, _ = digits
    fid = compute_metrics(generated=test_u8, reference=str(stats[0]), extractor="domain-digits", metrics=("fid",))
    assert abs(fid["fid"]) < 1e-6


def test_kid_and_pr_need_features(digits, stats):
    _, train_u8 = digits
    with pytest.raises(MetricError, match="KID and precision/recall need the reference's features"):
        compute_metrics(generated=train_u8[:200], reference=str(stats[0]), extractor="domain-digits",
                        kid_subset_size=100)
    m = compute_metrics(generated=train_u8[:200], reference=str(stats[1]), extractor="domain-digits",
                        kid_subset_size=100)
    split = compute_metrics(generated=train_u8[:200], reference="digits:test", extractor="domain-digits",
                            kid_subset_size=100)
    for k in ("fid", "kid_mean", "precision", "recall"):
        assert m[k] == pytest.approx(split[k], rel=1e-9, abs=1e-12)


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("arrays,match", [
    (dict(mean=np.zeros(128), cov=np.eye(128)), "no 'mu' and 'sigma' arrays .*mean.*not a statistics file"),
    (dict(mu=np.zeros(128), sigma=np.eye(127)), r"mu must be \(D,\) and sigma \(D, D\)"),
    (dict(mu=np.zeros((2, 64)), sigma=np.eye(128)), r"mu must be \(D,\)"),
    (dict(mu=np.full(128, np.nan), sigma=np.eye(128)), "NaN or Inf"),
    (dict(mu=np.zeros(2048), sigma=np.eye(2048)), "2048-d statistics but extractor 'domain-digits' gives 128-d"),
    (dict(mu=np.zeros(128), sigma=np.eye(128), extractor=np.array("domain-mnist")),
     "computed with extractor 'domain-mnist'"),
    (dict(mu=np.zeros(128), sigma=np.eye(128), resolution=np.array([1, 28, 28])), "another resolution"),
])
def test_bad_statistics_files_are_one_line_errors(digits, tmp_path, arrays, match):
    path = _npz(tmp_path / "bad.npz", **arrays)
    with pytest.raises(MetricError, match=match) as info:
        compute_metrics(generated=digits[1][:50], reference=str(path), extractor="domain-digits", metrics=("fid",))
    assert "\n" not in str(info.value)


def test_unreadable_files_and_folders(tmp_path, digits):
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(MetricError, match="cannot read reference statistics"):
        compute_metrics(generated=digits[1][:50], reference=str(tmp_path / "junk.npz"), extractor="domain-digits",
                        metrics=("fid",))
    with pytest.raises(MetricError, match="not found"):
        compute_metrics(generated=digits[1][:50], reference=str(tmp_path / "none.npz"), extractor="domain-digits",
                        metrics=("fid",))


def test_reference_command_reads_a_folder_of_images(tmp_path, digits, capsys):
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, img in enumerate(digits[0][:40]):
        Image.fromarray(img[0].numpy()).save(folder / f"{i:03d}.png")
    out = tmp_path / "folder.npz"
    assert main(["reference", str(folder), "--out", str(out), "--extractor", "domain-digits"]) == 0
    assert "40 images, 128-d domain-digits" in capsys.readouterr().out
    with np.load(out) as npz:
        assert npz["mu"].shape == (128,) and npz["sigma"].shape == (128, 128) and int(npz["n"]) == 40
        assert str(npz["extractor"]) == "domain-digits" and npz["resolution"].tolist() == [1, 8, 8]
    own = compute_metrics(generated=digits[0][:40], reference=str(out), extractor="domain-digits", metrics=("fid",))
    assert abs(own["fid"]) < 1e-5  # the eigenvalues of a rank-39 product: float noise only
    Image.fromarray(np.zeros((9, 9), np.uint8)).save(folder / "zzz.png")
    assert main(["reference", str(folder), "--out", str(tmp_path / "x.npz"), "--extractor", "domain-digits"]) == 2
    assert "zzz.png" in capsys.readouterr().err and not (tmp_path / "x.npz").exists()
