"""The perf harness's overhead sections produce their tables (no timing is asserted: benchmarks
are not tests) and refuse nothing silently: unknown benchmark names are errors."""
import re

import pytest
import torch

from bench import perf
from bench.perf_steps import METHODS, gpu_benchmark, overhead_benchmark, sampler_benchmark


def test_overhead_section_has_every_path_against_the_bare_step():
    body, rows = overhead_benchmark(repeats=1, batch=4)
    assert [r["path"] for r in rows] == [m[0] for m in METHODS]
    assert "| bare backbone step |" in body and re.search(r"Goal ≤ 5 % — (met|NOT met)", body)
    assert all(r["ms"] > 0 for r in rows)


def test_sampler_section_counts_the_samplers_own_nfe():
    from methods import get_path, get_sampler

    body, rows = sampler_benchmark(repeats=1, batch=2, steps=3)
    for (name, params, _, smp), row in zip(METHODS, rows):
        path = get_path(name, **params)
        expected = get_sampler(smp, **({} if smp in ("ihdm_delta", "cold_alg2") else {"steps": 3})).expected_nfe(path)
        assert row["nfe"] == expected and row["per_nfe_ms"] > 0
    assert "| — | bare forward | 1 |" in body


@pytest.mark.skipif(torch.cuda.is_available(), reason="the no-GPU message is for machines without CUDA")
def test_gpu_section_says_plainly_when_there_is_no_gpu():
    body, rows = gpu_benchmark()
    assert rows == [] and "Not measured: no CUDA GPU" in body


def test_unknown_benchmark_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown benchmark 'nope'"):
        perf.run(only=["nope"], out=tmp_path / "perf.md")
    assert not (tmp_path / "perf.md").exists()
