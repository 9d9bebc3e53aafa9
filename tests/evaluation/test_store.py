"""The results store: round trips, validation, concurrent writers, kills mid-append."""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import time
import warnings

import numpy as np
import pytest

from hdfm_bench.evaluation.store import ResultStore, StoreError, StoreWarning, read_results

PROTO = {
    "extractor": "inception-v3", "extractor_hash": "abc123", "n_gen": 10000, "n_ref": 10000,
    "reference_split": "test", "reference_hash": "def456", "resolution": [28, 28],
    "sampler": "euler", "steps": 50, "nfe": 50, "cfg_scale": 1.0, "cfg_interval": [0.1, 1.0],
    "ema": True, "seed": 0, "budget": "quick",
}


def _row(run="r0", step=1000, metric="fid", value=1.5, **extra):
    return {"run_id": run, "checkpoint_step": step, "metric": metric, "value": value,
            "protocol": dict(PROTO), **extra}


def test_round_trip_and_flattening(tmp_path):
    store = ResultStore(tmp_path / "store")
    assert len(store.read()) == 0 and "protocol_hash" in store.read().columns
    n = store.append([_row(method="hdfm", path="hdfm", target="x", task="mnist"),
                      _row(metric="spectral_r_hf", value=np.float32(0.75),
                           created="2025-01-01T00:00:00+00:00")])
    assert n == 2
    df = ResultStore(tmp_path / "store").read()
    assert len(df) == 2
    assert list(df["metric"]) == ["fid", "spectral_r_hf"]
    assert df["value"].tolist() == [1.5, 0.75]
    assert df["checkpoint_step"].tolist() == [1000, 1000]
    assert df.loc[0, "method"] == "hdfm" and df.loc[0, "task"] == "mnist"
    assert df.loc[1, "created"] == "2025-01-01T00:00:00+00:00"
    assert df.loc[0, "created"].endswith("+00:00")  # filled in, UTC
    assert df.loc[0, "protocol.sampler"] == "euler"
    assert df.loc[0, "protocol.n_gen"] == 10000
    assert df.loc[0, "protocol.cfg_interval"] == (0.1, 1.0)
    assert json.loads(df.loc[0, "protocol_json"]) == PROTO
    assert df.loc[0, "protocol_hash"] == store.protocol_hash(PROTO)
    assert store.skipped_lines == 0


def test_protocol_hash_is_stable():
    reordered = dict(reversed(list(PROTO.items())))
    assert ResultStore.protocol_hash(PROTO) == ResultStore.protocol_hash(reordered)
    assert ResultStore.protocol_hash({"a": {"x": 1, "y": 2}}) == ResultStore.protocol_hash({"a": {"y": 2, "x": 1}})
    assert ResultStore.protocol_hash({"seed": np.int64(3)}) == ResultStore.protocol_hash({"seed": 3})
    assert ResultStore.protocol_hash({**PROTO, "seed": 1}) != ResultStore.protocol_hash(PROTO)
    assert len(ResultStore.protocol_hash(PROTO)) == 16


@pytest.mark.parametrize(
    "bad, match",
    [
        ({k: v for k, v in _row().items() if k != "metric"}, "missing required"),
        ({k: v for k, v in _row().items() if k != "protocol"}, "missing required"),
        (_row(value=float("nan")), "not finite"),
        (_row(value=float("inf")), "not finite"),
        (_row(value="1.0"), "not a real number"),
        ({**_row(), "protocol": {"f": object()}}, "not JSON-serialisable"),
        ({**_row(), "protocol": {"x": float("nan")}}, "not JSON-serialisable"),
        ({**_row(), "protocol": [1, 2]}, "expected a dict"),
        (_row(step=1.5), "checkpoint_step"),
    ],
)
def test_bad_rows_raise_and_write_nothing(tmp_path, bad, match):
    store = ResultStore(tmp_path / "s.jsonl")
    store.append([_row()])
    with pytest.raises(StoreError, match=match):
        store.append([_row(run="ok"), bad])  # one good row before the bad one: all or nothing
    df = store.read()
    assert len(df) == 1 and df.loc[0, "run_id"] == "r0"


def _writer(path: str, k: int) -> None:
    store = ResultStore(path)
    for i in range(50):
        store.append([_row(run=f"w{k}", step=i, value=float(k * 1000 + i))])


def test_concurrent_writer_processes(tmp_path):
    path = str(tmp_path / "conc")
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(path, k)) for k in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    store = ResultStore(path)
    df = store.read()
    assert len(df) == 400 and store.skipped_lines == 0
    assert df["value"].nunique() == 400
    assert len(set(zip(df["run_id"], df["checkpoint_step"]))) == 400
    assert sorted(df["value"]) == sorted(float(k * 1000 + i) for k in range(8) for i in range(50))


def _hammer(path: str) -> None:
    store = ResultStore(path)
    batch = [_row(run="big", step=i, value=float(i), pad="x" * 200) for i in range(20000)]
    while True:
        store.append(batch)


def test_sigkill_mid_append_leaves_complete_rows(tmp_path):
    path = str(tmp_path / "killed")
    store = ResultStore(path)
    store.append([_row(run="before")])
    ctx = mp.get_context("fork")
    p = ctx.Process(target=_hammer, args=(path,))
    p.start()
    size0 = os.path.getsize(store.file)
    deadline = time.monotonic() + 30
    while os.path.getsize(store.file) == size0 and time.monotonic() < deadline:
        time.sleep(0.01)  # wait for the first big batch, then kill during a later one
    time.sleep(0.2)
    os.kill(p.pid, signal.SIGKILL)
    p.join(10)
    assert p.exitcode == -signal.SIGKILL
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StoreWarning)
        df = store.read()
    assert len(df) >= 20001 and (len(df) - 1) % 20000 == 0  # whole batches only
    assert df["value"].notna().all() and df["run_id"].notna().all()
    assert df.loc[0, "run_id"] == "before"
    big = df[df["run_id"] == "big"]
    assert (big["pad"] == "x" * 200).all()
    # a partial tail line, if the kill left one, is skipped and counted; appends still work
    store.append([_row(run="after")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StoreWarning)
        df2 = store.read()
    assert len(df2) == len(df) + 1 and df2.iloc[-1]["run_id"] == "after"


def test_reader_skips_a_truncated_tail_line(tmp_path):
    store = ResultStore(tmp_path / "t")
    store.append([_row(run="a")])
    store.append([_row(run="b"), _row(run="c")])
    data = store.file.read_bytes()
    store.file.write_bytes(data[:-40])  # cut the second batch mid-line
    with pytest.warns(StoreWarning, match=r"line 2: unterminated \(a writer stopped mid-append\)"):
        df = store.read()
    assert df["run_id"].tolist() == ["a"] and store.skipped_lines == 1
    store.append([_row(run="d")])
    with pytest.warns(StoreWarning, match="line 2: not a batch of rows"):  # no longer the last line
        assert store.read()["run_id"].tolist() == ["a", "d"]


def test_reader_names_malformed_rows_it_leaves_out(tmp_path):
    store = ResultStore(tmp_path / "t")
    store.append([_row(run="a")])
    good = json.loads(store.file.read_text())
    bad = [{**good["rows"][0], "run_id": "nan-value", "value": None}, {"run_id": "no-metric"}, "text"]
    with open(store.file, "a") as fh:
        fh.write(json.dumps({"v": 1, "rows": [*bad, {**good["rows"][0], "run_id": "b"}]}) + "\n")
    with pytest.warns(StoreWarning) as info:
        df = store.read()
    assert df["run_id"].tolist() == ["a", "b"]
    assert store.notes == ["line 2, row 1: value None is not a finite number",
                           "line 2, row 2: missing checkpoint_step, metric, value, protocol",
                           "line 2, row 3: a str, not a row"]
    assert "line 2, row 1" in str(info[0].message)


def test_read_results_returns_notes_instead_of_warning_and_names_what_is_wrong(tmp_path):
    store = ResultStore(tmp_path / "r.jsonl")
    store.append([_row(run="a")])
    with open(store.file, "a") as fh:
        fh.write("not json\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no StoreWarning: the notes are the caller's to show
        df, notes = read_results(store.file, "tabulate")
    assert df["run_id"].tolist() == ["a"]
    assert notes == [f"{store.file}: left out line 2: not a batch of rows (invalid JSON or no 'rows' list)"]
    ResultStore(tmp_path / "folder").append([_row(run="b")])  # a folder holding results.jsonl
    assert read_results(tmp_path / "folder", "plot")[0]["run_id"].tolist() == ["b"]
    with pytest.raises(FileNotFoundError, match="results store not found"):
        read_results(tmp_path / "missing.jsonl", "plot")
    (tmp_path / "notes.txt").write_text("x\n")
    with pytest.raises(ValueError, match=r"^--store .*notes.txt is not a results store"):
        read_results(tmp_path / "notes.txt", "plot")
    (tmp_path / "bad.jsonl").write_text("junk\n")
    with pytest.raises(ValueError, match=r"holds no readable rows \(line 1: not a batch"):
        read_results(tmp_path / "bad.jsonl", "plot")
    ResultStore.write_fresh(tmp_path / "empty.jsonl", [])
    with pytest.raises(ValueError, match="no results to plot in"):
        read_results(tmp_path / "empty.jsonl", "plot")

def test_read_10000_rows(tmp_path):
    store = ResultStore(tmp_path / "big")
    for b in range(10):
        store.append([_row(run=f"r{b}", step=i, value=float(i)) for i in range(1000)])
    df = store.read()  # its speed is measured in results/perf.md, not asserted here
    assert len(df) == 10000


def test_replace_keeps_one_copy_of_each_measurement(tmp_path):
    """A re-run (the default suite into the same results folder) replaces its measurements instead of repeating
    them; other measurements stay, and a store with a damaged line is only appended to (nothing is lost)."""
    store = ResultStore(tmp_path / "r.jsonl")

    def row(run, metric, value, **proto):
        return {"run_id": run, "checkpoint_step": 3, "metric": metric, "value": value, "method": run,
                "protocol": {"n_gen": 10, **proto}}

    store.append([row("a", "fid", 1.0), row("a", "kid", 0.1), row("b", "fid", 2.0)])
    assert store.replace([row("a", "fid", 1.5), row("a", "fid", 9.0, n_gen=20)]) == 2
    got = sorted((r["run_id"], r["metric"], r["protocol"]["n_gen"], r["value"]) for r in store.rows())
    assert got == [("a", "fid", 10, 1.5), ("a", "fid", 20, 9.0), ("a", "kid", 10, 0.1), ("b", "fid", 10, 2.0)]
    store.replace([row("a", "fid", 1.5)])  # the same again: still one copy
    assert len(store) == 4
    # whole_methods: a method measured on another run (its config changed) replaces all its old rows
    renamed = {**row("a2", "fid", 3.0), "method": "a"}
    store.replace([renamed], whole_methods=True)
    got = sorted((r["run_id"], r["method"], r["metric"]) for r in store.rows())
    assert got == [("a2", "a", "fid"), ("b", "b", "fid")]
    with open(store.file, "a") as fh:
        fh.write("not json\n")
    store.replace([row("a", "fid", 1.7)])
    with pytest.warns(StoreWarning):
        assert len(store.rows()) == 3 and "not json" in store.file.read_text()
