"""The ImageNet-256 spec against data made the way its comments say: a dataset zip and reference
statistics from `hdfm-bench prepare`, checked by a dry run with --check-data."""
from __future__ import annotations

import numpy as np

from hdfm_bench.cli import main
from hdfm_bench.tasks.samples import synthetic_folder


def test_imagenet256_spec_validates_against_a_prepared_zip(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = synthetic_folder(tmp_path / "imagenet", 16, size=300, classes=4, seed=5)
    archive, ref = tmp_path / "imagenet256-train.zip", tmp_path / "ref.npz"
    assert main(["prepare", str(folder), str(archive), "--resolution", "256", "--workers", "2",
                 "--reference-stats", str(ref), "--batch-size", "16"]) == 0
    assert "16 images at 256x256, 4 classes" in capsys.readouterr().out
    assert np.load(ref)["mu"].shape == (2048,)
    args = ["sweep", "imagenet256-jit-b", "--executor", "slurm", "--dry-run", "--check-data",
            "--set", f"task_params.root={archive}", "--eval", f"reference={ref}"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "data not on this machine" not in out  # the zip was opened and indexed
    assert "imagezip" in out and f"reference={ref}" in out and "n=50000" in out
    assert "data parallel: 8 processes per training job" in out and "128 images of every global batch" in out
    assert not (tmp_path / "sweeps").exists() and not (tmp_path / "runs").exists()

    # --check-data opens the statistics: a missing file, or one made with another extractor, is refused
    assert main(args[:-2] + ["--eval", f"reference={tmp_path / 'none.npz'}"]) == 2
    assert "none.npz not found" in capsys.readouterr().err
    assert main(args + ["--eval", "extractor=inception"]) == 2
    assert "were computed with 'inception-offline', the evaluation uses 'inception'" in capsys.readouterr().err
    # an unlabelled zip cannot feed the class-conditional spec
    plain = synthetic_folder(tmp_path / "plain", 4, size=256, classes=0)
    assert main(["prepare", str(plain), str(tmp_path / "plain.zip"), "--resolution", "256", "--workers", "1"]) == 0
    capsys.readouterr()
    assert main(args[:-4] + ["--set", f"task_params.root={tmp_path / 'plain.zip'}", "--eval", f"reference={ref}"]) == 2
    assert "no dataset.json labels, but classes=1000" in capsys.readouterr().err
