"""``hdfm-bench score``: images from anywhere, measured exactly as ``evaluate`` measures a run (issue 27).

The peer here is ``evaluate`` itself: a run's samples saved with ``--save-samples`` and scored back
must give the stored row's numbers (relative 1e-6), in each of the three exchange formats, and the two
rows must sit in one table. ADM's own layout (``np.savez`` with ``arr_0``/``arr_1``) is read as ADM
writes it.
"""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from hdfm_bench.cli import main
from hdfm_bench.evaluation.image_sets import ImageSet
from hdfm_bench.evaluation.metrics.errors import MetricError
from hdfm_bench.evaluation.score import Scoring, score_images
from hdfm_bench.evaluation.store import ResultStore
from hdfm_bench.evaluation.tables import make_table
from hdfm_bench.training import train
from tests.training.helpers import cfg_for

N = 40
HEADLINE = ("fid", "kid", "precision", "recall", "class_accuracy", "r_hf", "lsd")


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """A tiny trained run evaluated once through the CLI, its samples saved in the three formats."""
    root = tmp_path_factory.mktemp("score")
    run = train(cfg_for(root / "runs", "noise_fm", steps=10), progress=False).run_dir
    store = root / "store.jsonl"
    for k, dest in enumerate(("s.npz", "s.zip", "s")):  # the same images each time (per-image seeds)
        assert main(["evaluate", str(run), "-n", str(N), "--steps", "2", "--seed", "3", "--store",
                     str(store) if k == 0 else str(root / f"other{k}.jsonl"), "--save-samples", str(root / dest),
                     "--batch-size", "16"]) == 0
    return root, store


def _values(rows) -> dict[str, float]:
    return {r["metric"]: r["value"] for r in rows if r["metric"] in HEADLINE or r["metric"].startswith("band")}


@pytest.mark.parametrize("fmt", ["s.npz", "s.zip", "s"])
def test_scoring_saved_samples_gives_the_evaluate_rows(evaluated, fmt):
    root, store = evaluated
    stored = _values(ResultStore(store).rows())
    scored = score_images(root / fmt, task="digits", kid_subset_size=None)
    got = _values(scored)
    assert set(got) == set(stored) and "class_accuracy" in got
    for metric, value in stored.items():
        assert got[metric] == pytest.approx(value, rel=1e-6, abs=1e-12), metric
    p = scored[0]["protocol"]
    assert p["sampler"] == "external" and p["nfe"] is None and p["budget"] is None
    assert p["images"]["format"] == {"s.npz": "npz", "s.zip": "zip", "s": "folder"}[fmt]
    assert p["images"]["n"] == N and p["images"]["labels"] is True


def test_the_pixel_hash_is_the_same_in_every_format(evaluated):
    root, _ = evaluated
    hashes = set()
    for fmt in ("s.npz", "s.zip", "s"):
        images = ImageSet.open(root / fmt)
        for _ in images.batches(7):
            pass
        hashes.add(images.sha256)
    assert len(hashes) == 1


def test_a_scored_row_sits_next_to_the_evaluated_row_in_one_table(evaluated, tmp_path):
    root, store = evaluated
    both = tmp_path / "both.jsonl"
    ResultStore(both).append(ResultStore(store).rows())
    assert main(["score", str(root / "s.npz"), "--task", "digits", "--name", "theirs", "--store", str(both)]) == 0
    df = ResultStore(both).read()
    table, _ = make_table(df, columns=["fid", "class_accuracy"])
    assert "theirs" in table and "noise_fm" in table
    fid = df[(df.metric == "fid")].groupby("method")["value"].first()
    assert fid["theirs"] == pytest.approx(fid["noise_fm"], rel=1e-6)
    # another extractor is another protocol: refused in one column
    other = tmp_path / "other.jsonl"
    ResultStore(other).append(ResultStore(both).rows())
    rows = [dict(r, method="x", protocol={**r["protocol"], "extractor_hash": "0" * 16}) for r in
            ResultStore(store).rows()]
    ResultStore(other).append(rows)
    with pytest.raises(ValueError, match="mixes protocols"):
        make_table(ResultStore(other).read(), columns=["fid"])


def test_adm_npz_layout_with_arr_1_labels(tmp_path):
    """ADM's evaluator layout: np.savez(path, images, labels) → arr_0 (N, H, W, C) uint8, arr_1 labels."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, 8, 8, 1), dtype=np.uint8)
    labels = rng.integers(0, 10, 12)
    np.savez(tmp_path / "adm.npz", images, labels)
    s = ImageSet.open(tmp_path / "adm.npz")
    assert (s.n, s.shape) == (12, (1, 8, 8))
    got = np.concatenate([u8.numpy() for u8, _, _ in s.batches(5)])
    np.testing.assert_array_equal(got, images.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(s.labels, labels)
    scoring = Scoring(tmp_path / "adm.npz", task="digits")
    assert scoring.accuracy is not None and scoring.kid_subset == 12


def _zip(path, members: dict[str, bytes], compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _png(arr) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def test_refusals_name_the_file_and_come_before_any_feature(tmp_path):
    ok = _png(np.zeros((8, 8), np.uint8))
    cases = {
        "slip.zip": (_zip(tmp_path / "slip.zip", {"0.png": ok, "../evil.png": ok}), "'..'"),
        "bomb.zip": (_zip(tmp_path / "bomb.zip", {"0.png": bytes(20 << 20)}, zipfile.ZIP_LZMA), "zip bomb"),
        "empty.zip": (_zip(tmp_path / "empty.zip", {"readme.txt": b"x"}), "holds no images"),
        "mode.zip": (_zip(tmp_path / "mode.zip", {"0.png": _png(np.zeros((8, 8), np.uint16))}), "mode"),
        "labels.zip": (_zip(tmp_path / "labels.zip", {"0.png": ok, "1.png": ok, "dataset.json":
                                                      json.dumps({"labels": [["0.png", 1]]}).encode()}), "1.png"),
    }
    np.savez(tmp_path / "float.npz", np.zeros((4, 8, 8, 1), np.float32))
    cases["float.npz"] = (tmp_path / "float.npz", "not uint8")
    np.savez(tmp_path / "short.npz", np.zeros((4, 8, 8, 1), np.uint8), np.zeros(3, np.int64))
    cases["short.npz"] = (tmp_path / "short.npz", "3 labels for 4 images")
    for name, (path, words) in cases.items():
        with pytest.raises(MetricError, match=words.replace(".", r"\.").replace("(", r"\(")) as info:
            ImageSet.open(path)
        assert name in str(info.value)


def test_a_garbage_member_is_refused_at_open_and_a_truncated_one_mid_pass_naming_it(tmp_path):
    ok = _png(np.random.default_rng(0).integers(0, 256, (8, 8), dtype=np.uint8))
    with pytest.raises(MetricError, match=r"g\.zip:1\.png"):  # every header is read before any pixel
        ImageSet.open(_zip(tmp_path / "g.zip", {"0.png": ok, "1.png": b"\x89PNG garbage"}))
    s = ImageSet.open(_zip(tmp_path / "t.zip", {"0.png": ok, "1.png": ok[: len(ok) - 30]}))  # header intact
    with pytest.raises(MetricError, match=r"t\.zip:1\.png"):
        list(s.batches(4))
    assert s.sha256 is None  # no pass completed, no identity


def test_shape_labels_and_kid_subset_are_checked_against_the_task(tmp_path):
    np.savez(tmp_path / "big.npz", np.zeros((20, 16, 16, 1), np.uint8))
    with pytest.raises(MetricError, match=r"\(1, 16, 16\).*\(1, 8, 8\)"):
        Scoring(tmp_path / "big.npz", task="digits")
    np.savez(tmp_path / "rgb.npz", np.zeros((20, 8, 8, 3), np.uint8))
    with pytest.raises(MetricError, match="channels"):
        Scoring(tmp_path / "rgb.npz", task="digits")
    np.savez(tmp_path / "cls.npz", np.zeros((20, 8, 8, 1), np.uint8), np.full(20, 10))
    with pytest.raises(MetricError, match="label 10 is not a class of digits"):
        Scoring(tmp_path / "cls.npz", task="digits")
    np.savez(tmp_path / "few.npz", np.zeros((20, 8, 8, 1), np.uint8))
    with pytest.raises(MetricError, match="fewer than KID's subset size 50"):
        Scoring(tmp_path / "few.npz", task="digits", kid_subset_size=50)


def test_shards_measured_apart_merge_to_the_unsharded_rows(evaluated, tmp_path):
    """An array task per shard (--shard k), then a merge: the same numbers and the same pixel hash."""
    root, _ = evaluated
    whole = _values(score_images(root / "s.zip", task="digits"))
    store, folder = tmp_path / "store.jsonl", tmp_path / "shards"
    argv = ["score", str(root / "s.zip"), "--task", "digits", "--shards", "4", "--shard-dir", str(folder),
            "--store", str(store), "--batch-size", "3"]
    for k in (2, 0, 3):
        assert main([*argv, "--shard", str(k)]) == 0
    assert not store.exists()
    with pytest.raises(MetricError, match="shard.s. 1 of 4 missing"):  # nothing merged while one is missing
        Scoring(root / "s.zip", task="digits").merge_shards(folder, 4)
    assert main(argv) == 0  # measures shard 1, merges
    rows = ResultStore(store).rows()
    got = _values(rows)
    for metric, value in whole.items():  # the extractor sees other batches (3 vs 256): float rounding only
        assert got[metric] == pytest.approx(value, rel=1e-6, abs=1e-12), metric
    assert rows[0]["protocol"]["shards"] == 4
    assert rows[0]["run_id"] == score_images(root / "s.npz", task="digits")[0]["run_id"]
    with pytest.raises(MetricError, match="divide into 3 shards"):
        Scoring(root / "s.zip", task="digits").shard_range(0, 3)
