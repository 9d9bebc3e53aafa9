"""Streamed data: `hdfm-bench prepare` (folder → dataset zip), the imagezip task, identical batches from
a folder and from its zip, and the errors of bad archives and folders."""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from hdfm_bench.cli import main
from hdfm_bench.core.config import RunConfig
from hdfm_bench.tasks import TaskError, get_task
from hdfm_bench.tasks.prepare import prepare_zip
from hdfm_bench.tasks.samples import synthetic_folder
from hdfm_bench.training.data import StepBatches, batch_loader
from hdfm_bench.training.rules import batch_indices


@pytest.fixture
def folder(tmp_path):
    root = synthetic_folder(tmp_path / "src", 30, size=20, classes=3, seed=1)
    # a non-square PNG and a greyscale JPEG: both cropped, resized and made RGB the same way
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (18, 30, 3), dtype=np.uint8)).save(
        root / "c001" / "wide.png")
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (24, 24), dtype=np.uint8)).save(
        root / "c002" / "grey.jpg")
    return root


def _batches(task, cfg, workers):
    ds = task.dataset("train")
    return [(x.clone(), y.clone()) for x, y in batch_loader(ds, StepBatches(cfg, len(ds), 0), workers)]


def test_prepared_zip_streams_the_batches_of_the_folder(tmp_path, folder):
    out = prepare_zip(folder, tmp_path / "data.zip", 16, workers=2)
    assert out["images"] == 32 and out["classes"] == 3 and out["skipped"] == []
    with zipfile.ZipFile(out["path"]) as zf:
        meta = json.loads(zf.read("dataset.json"))
        assert len([n for n in zf.namelist() if n.endswith(".png")]) == 32
    assert meta["classes"] == ["c000", "c001", "c002"] and len(meta["labels"]) == 32
    from_folder = get_task("imagefolder", root=folder, resolution=16)
    from_zip = get_task("imagezip", root=out["path"], resolution=16)
    assert from_zip.shape == from_folder.shape == (3, 16, 16) and from_zip.num_classes == 3
    assert from_folder.streaming and from_zip.streaming
    cfg = RunConfig(task="imagezip", batch_size=8, steps=9, seed=3)  # 9 steps of 8: more than two epochs
    a, b = _batches(from_folder, cfg, workers=2), _batches(from_zip, cfg, workers=0)
    assert len(a) == len(b) == 9
    x_all, y_all = from_folder.load("train")  # the in-memory decode of the same files
    for step, ((xa, ya), (xb, yb)) in enumerate(zip(a, b)):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
        idx = batch_indices(cfg, 32, step)
        assert torch.equal(xa, x_all[idx]) and torch.equal(ya, y_all[idx])
    assert torch.equal(from_zip.load("train")[0], x_all)
    # a rank's slice of every batch is that slice of the single-process batch
    half = [(x, y) for x, y in batch_loader(from_zip.dataset(), StepBatches(cfg, 32, 4, slice(4, 8)), 0)]
    assert len(half) == 5 and all(torch.equal(h[0], full[0][4:8]) for h, full in zip(half, b[4:]))


def test_prepare_cli_corrupt_image_fails_or_is_skipped_by_name(tmp_path, folder, capsys):
    (folder / "c000" / "broken.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    dest = tmp_path / "data.zip"
    dest.write_bytes(b"an older archive")
    assert main(["prepare", str(folder), str(dest), "--resolution", "16", "--workers", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bar: one error line
    assert err.startswith("hdfm-bench: error: prepare: cannot read image") and "broken.jpg" in err
    assert "nothing was written" in err
    assert dest.read_bytes() == b"an older archive"  # untouched
    assert not list(tmp_path.glob("*.tmp*"))
    assert main(["prepare", str(folder), str(dest), "--resolution", "16", "--workers", "1", "--on-error", "skip"]) == 0
    cap = capsys.readouterr()
    assert "skipped" in cap.err and "broken.jpg" in cap.err and "32 images" in cap.out
    assert len(get_task("imagezip", root=dest, resolution=16).dataset()) == 32
    assert main(["prepare", str(folder), str(dest), "--on-error", "maybe"]) == 2
    assert "on_error" in capsys.readouterr().err
    assert main(["prepare", str(tmp_path / "nowhere"), str(dest)]) == 2
    assert "nowhere" in capsys.readouterr().err
    assert main(["prepare", str(folder), str(tmp_path / "data.tar")]) == 2
    assert ".zip" in capsys.readouterr().err


def test_prepare_cli_writes_reference_statistics_of_the_zip(tmp_path, folder, capsys):
    from hdfm_bench.evaluation.metrics.reference import load_statistics

    ref = tmp_path / "ref.npz"
    assert main(["prepare", str(folder), str(tmp_path / "d.zip"), "--resolution", "16", "--workers", "1",
                 "--reference-stats", str(ref), "--extractor", "inception-offline", "--batch-size", "16"]) == 0
    out = capsys.readouterr().out
    assert "d.zip: 32 images" in out and "ref.npz" in out
    stats = load_statistics(ref)
    assert stats["mu"].shape == (2048,) and stats["meta"]["n"] == 32
    assert stats["meta"]["extractor"] == "inception-offline" and stats["meta"]["source"].endswith("d.zip")


def _zip(path, names, labels=None, extra=()):
    with zipfile.ZipFile(path, "w") as zf:
        for name in names:
            buf = io.BytesIO()
            Image.new("RGB", (8, 8), (10, 20, 30)).save(buf, "PNG")
            zf.writestr(name, buf.getvalue())
        if labels is not None:
            zf.writestr("dataset.json", json.dumps({"labels": [[n, c] for n, c in zip(names, labels)]}))
        for name, data in extra:
            zf.writestr(name, data)
    return path


def test_imagezip_errors_are_one_line(tmp_path, folder):
    unlabelled = _zip(tmp_path / "u.zip", ["a.png", "b.png"])
    task = get_task("imagezip", root=unlabelled, resolution=8)  # unconditional data is fine
    assert task.num_classes == 0 and task.dataset()[1][1] == 0
    with pytest.raises(TaskError, match=r"no dataset.json labels, but classes=10"):
        get_task("imagezip", root=unlabelled, resolution=8, classes=10)
    train = _zip(tmp_path / "t.zip", ["a.png", "b.png"], [0, 1])
    val = _zip(tmp_path / "v.zip", ["c.png"], [5])
    with pytest.raises(TaskError, match="classes differ between splits"):
        get_task("imagezip", root=train, val=val, resolution=8)
    assert get_task("imagezip", root=train, val=_zip(tmp_path / "v2.zip", ["c.png"], [1]), resolution=8).splits == \
        ("train", "val")
    with pytest.raises(TaskError, match="no label for b.png"):
        get_task("imagezip", root=_zip(tmp_path / "p.zip", ["a.png", "b.png"], [0]), resolution=8)
    (tmp_path / "junk.zip").write_bytes(b"PK not really")
    with pytest.raises(TaskError, match="junk.zip"):
        get_task("imagezip", root=tmp_path / "junk.zip")
    with pytest.raises(TaskError, match="holds no images"):
        get_task("imagezip", root=_zip(tmp_path / "e.zip", [], extra=[("readme.txt", "hi")]))
    with pytest.raises(TaskError, match="does not exist"):
        get_task("imagezip", root=tmp_path / "missing.zip")
    bad = _zip(tmp_path / "bad.zip", ["a.png"], extra=[("z.png", b"not a png")])  # unlabelled
    with pytest.raises(TaskError, match=r"bad.zip:z.png"):
        get_task("imagezip", root=bad, resolution=8).dataset()[1]
    # an image folder whose evaluation split has a class the training split lacks
    (folder / "train").mkdir()
    for sub in ("c000", "c001", "c002"):
        (folder / sub).rename(folder / "train" / sub)
    synthetic_folder(folder, 5, size=12, classes=5, split="val")  # c003, c004: not train classes
    with pytest.raises(TaskError, match="classes differ between splits"):
        get_task("imagefolder", root=folder, resolution=8)


def test_prepare_fails_at_once_when_a_worker_dies_and_leaves_no_temporary(tmp_path):
    """A decoding worker killed (as the kernel's OOM killer does) used to leave prepare waiting for ever;
    now it fails at once, one line, and the hidden temporary zip is gone."""
    import os
    import signal
    import threading
    import time
    from pathlib import Path as P

    src = synthetic_folder(tmp_path / "big", 3000, size=64, classes=2, seed=3)
    dest = tmp_path / "out" / "d.zip"

    def kill_a_worker():
        me = str(os.getpid())
        for _ in range(400):
            kids = [p.name for p in P("/proc").iterdir() if p.name.isdigit()
                    and (p / "stat").exists() and (p / "stat").read_text().rsplit(")", 1)[1].split()[1] == me
                    and b"spawn" in (p / "cmdline").read_bytes()]
            if kids:
                time.sleep(0.5)
                os.kill(int(kids[0]), signal.SIGKILL)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_a_worker, daemon=True)
    killer.start()
    t0 = time.monotonic()
    with pytest.raises(TaskError, match="a decoding worker died") as err:
        prepare_zip(src, dest, 32, workers=2)
    assert "\n" not in str(err.value) and time.monotonic() - t0 < 120
    killer.join(5)
    assert not dest.exists() and list(dest.parent.iterdir()) == []  # no hidden .d.zip.* temporary
