"""Exchange formats: .npz with arr_0 uint8 NHWC (ADM's evaluator), a zip or a folder of PNGs (clean-fid,
torch-fidelity, EDM) — each the generated images exactly, appearing only when complete."""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from hdfm_bench.cli import main
from hdfm_bench.evaluation.evaluate import evaluate_run
from hdfm_bench.evaluation.protocol import EvalSettings
from hdfm_bench.sampling.generate import generate
from hdfm_bench.sampling.output import SampleWriter, sample_name, sample_stem
from hdfm_bench.sampling.settings import SamplingSettings
from hdfm_bench.tasks import unit_to_u8
from hdfm_bench.training import train
from tests.training.helpers import cfg_for


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return train(cfg_for(tmp_path_factory.mktemp("runs"), "noise_fm", steps=10), progress=False).run_dir


@pytest.fixture(scope="module")
def expected(run):
    out = generate(run, SamplingSettings(n=20, steps=2, seed=3))
    return unit_to_u8(out["samples"]).permute(0, 2, 3, 1).numpy(), out["labels"].numpy()


def test_npz_holds_arr_0_uint8_nhwc_and_the_labels(run, expected, tmp_path):
    dest = tmp_path / "samples.npz"
    evaluate_run(run, EvalSettings(n=20, steps=2, seed=3, kid_subset_size=10, batch_size=7), save_samples=dest)
    with np.load(dest) as npz:  # what ADM's evaluator does
        assert npz["arr_0"].dtype == np.uint8 and npz["arr_0"].shape == (20, 8, 8, 1)
        np.testing.assert_array_equal(npz["arr_0"], expected[0])
        np.testing.assert_array_equal(npz["labels"], expected[1])
    assert [p.name for p in tmp_path.iterdir()] == ["samples.npz"]  # no temporary left


@pytest.mark.parametrize("name", ["pngs.zip", "pngs"])
def test_png_zip_and_folder_hold_every_image(run, expected, tmp_path, name):
    dest = tmp_path / name
    assert main(["sample", str(run), "-n", "20", "--steps", "2", "--seed", "3", "--out", str(tmp_path / "g"),
                 "--save-samples", str(dest)]) == 0
    if name.endswith(".zip"):
        zf = zipfile.ZipFile(dest)
        read = lambda n: zf.read(n)
        names = sorted(n for n in zf.namelist() if n.endswith(".png"))
        labels = json.loads(zf.read("dataset.json"))["labels"]
    else:
        read = lambda n: (dest / n).read_bytes()
        names = sorted(p.name for p in dest.glob("*.png"))
        labels = json.loads((dest / "dataset.json").read_text())["labels"]
    assert names == [f"{i:08d}.png" for i in range(20)]
    for i, n in enumerate(names):
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(read(n))))[..., None], expected[0][i])
    assert dict(labels) == {f"{i:08d}.png": int(expected[1][i]) for i in range(20)}


def test_bad_destinations_are_refused_before_any_work(run, tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.png").write_bytes(b"x")
    with pytest.raises(ValueError, match="not empty"):
        SampleWriter.open(full, 4, (1, 8, 8))
    with pytest.raises(ValueError, match="--save-samples writes one file"):
        evaluate_run(run, EvalSettings(n=20, shards=2, steps=2, kid_subset_size=10), save_samples=tmp_path / "s.npz")
    w = SampleWriter.open(tmp_path / "part.npz", 4, (1, 8, 8))
    w.add(torch.zeros(2, 1, 8, 8, dtype=torch.uint8), None, [0, 1])
    w.member.close()
    with pytest.raises(ValueError, match="2 of 4 images"):
        w.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]  # nothing half-written appeared


def test_sample_files_are_named_by_the_protocol_unless_a_stem_is_given(tmp_path):
    proto = {"sampler": "heun", "steps": 4}
    assert sample_name(proto, 1.5, None, 3) == "heun-4-cfg1.5-emaNone-seed3"
    assert sample_name(proto, 2.0, 0.999, 0, checkpoint_step=200) == "heun-4-cfg2-ema0.999-seed0-step200"
    kw = {"cfg_scale": 1.0, "ema": None, "seed": 0}
    name = "heun-4-cfg1-emaNone-seed0"
    assert sample_stem(proto, tmp_path / "run", None, **kw) == tmp_path / "run" / "samples" / name
    assert sample_stem(proto, "run", f"{tmp_path}/new/", **kw) == tmp_path / "new" / "heun-4-cfg1-emaNone-seed0"
    assert sample_stem(proto, "run", str(tmp_path), **kw) == tmp_path / "heun-4-cfg1-emaNone-seed0"  # a folder
    assert sample_stem(proto, "run", f"{tmp_path}/grid", **kw) == f"{tmp_path}/grid"  # a stem, as given
