"""The perf harness: sections, the FFT-DCT baseline, and each section's table.

No timing is asserted (benchmarks are not tests); what is asserted is that each section reports
every case, that its derived numbers follow from its measured ones, and that each verdict it
prints is the one its own numbers imply.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.fft
import torch

from hdfm_bench.methods import get_path, get_sampler, recipe, spectral
from hdfm_bench.perf import harness, runner
from hdfm_bench.perf.fft_dct import dct2_fft, dct_fft, heat_blur_fft, idct2_fft, idct_fft
from hdfm_bench.perf.gpu import gpu_benchmark
from hdfm_bench.perf.overhead import overhead_benchmark
from hdfm_bench.perf.sampler import sampler_benchmark
from hdfm_bench.perf.spectral import spectral_benchmark


def test_perf_sections_update_independently(tmp_path):
    dest = tmp_path / "perf.md"
    harness.update_section(dest, "a", "## A\nfirst")
    harness.update_section(dest, "b", "## B\nsecond")
    harness.update_section(dest, "a", "## A\nthird")
    text = dest.read_text()
    assert text.startswith("# hdfm-bench performance")
    assert "third" in text and "first" not in text and "second" in text
    assert text.index("## A") < text.index("## B")


def test_interleaved_medians_take_turns_in_blocks_and_skip_warm_up_calls(monkeypatch):
    order = []
    ticks = iter(range(10_000))
    monkeypatch.setattr(harness.time, "perf_counter", lambda: float(next(ticks)))
    med = harness.interleaved_medians({"a": lambda: order.append("a"), "b": lambda: order.append("b")},
                                      repeats=3, block=3, warmup=1)
    assert order == ["a"] * 4 + ["b"] * 4  # one block each: 1 warm-up + 3 timed calls
    assert med == {"a": 1.0, "b": 1.0}  # each timed call spans one tick of the fake clock


@pytest.mark.parametrize("n", [1, 2, 7, 8, 33])
def test_fft_baseline_is_a_correct_dct(n):
    x = torch.randn(3, 4, n, dtype=torch.float64)
    np.testing.assert_allclose(dct_fft(x), scipy.fft.dct(x.numpy(), norm="ortho"), atol=1e-12)
    np.testing.assert_allclose(idct_fft(dct_fft(x)), x, atol=1e-12)
    y = torch.randn(2, 3, n, n + 2, dtype=torch.float64)
    np.testing.assert_allclose(dct2_fft(y), scipy.fft.dctn(y.numpy(), axes=(-2, -1), norm="ortho"), atol=1e-12)
    np.testing.assert_allclose(idct2_fft(dct2_fft(y)), y, atol=1e-12)


def test_fft_baseline_blur_equals_ours():
    x = torch.randn(4, 3, 16, 12, dtype=torch.float64)
    tau = torch.rand(4, dtype=torch.float64) * 3
    torch.testing.assert_close(heat_blur_fft(x, tau), spectral.heat_blur(x, tau))


def test_spectral_benchmark_derives_its_ratios_and_verdicts_from_its_timings():
    body, rows = spectral_benchmark(repeats=1, sizes=(8,), batch=2, channels=1)
    assert [r["pass"] for r in rows] == ["forward", "forward+backward"]
    for r in rows:
        assert r["speedup"] == pytest.approx(r["fft_ms"] / r["ours_ms"])
        assert r["of_limit"] == pytest.approx(r["limit_ms"] / r["ours_ms"])
        assert f"| {r['size']} | {r['pass']} | {r['fft_ms']:.2f} | {r['ours_ms']:.2f} | {r['speedup']:.1f}× |" in body
    worst = min(r["speedup"] for r in rows)
    verdict = "met" if worst >= 5 else "NOT met"
    assert f"≥ 5× faster than the FFT DCT — {verdict} (worst {worst:.1f}×)" in body


def test_overhead_section_has_every_path_against_the_bare_step():
    body, rows = overhead_benchmark(repeats=1, batch=4)
    assert [r["path"] for r in rows] == [name for name, _ in harness.BENCH_PATHS]
    bare = float(body.split("| bare backbone step | ")[1].split(" |")[0])
    for r in rows:
        assert r["ms"] > 0 and r["overhead"] == pytest.approx(r["ms"] / bare - 1, rel=0.02, abs=0.01)
        line = f"| {r['path']} (draws, corrupt, objective loss) | {r['ms']:.1f} | {100 * r['overhead']:+.1f} % |"
        assert line in body
    worst = max(r["overhead"] for r in rows)
    assert f"Goal ≤ 5 % — {'met' if worst <= 0.05 else 'NOT met'} (worst {100 * worst:+.1f} %)" in body


def test_sampler_section_uses_each_recipe_and_counts_its_nfe():
    body, rows = sampler_benchmark(repeats=1, batch=2, steps=3)
    assert [r["path"] for r in rows] == [name for name, _ in harness.BENCH_PATHS]
    for (name, params), row in zip(harness.BENCH_PATHS, rows):
        r = recipe(name)
        smp = get_sampler(r.sampler, **({"steps": 3} if r.steps is not None else {}))
        assert row["sampler"] == r.sampler and row["nfe"] == smp.expected_nfe(get_path(name, **params))
        assert row["per_nfe_ms"] > 0
    assert "| — | bare forward | 1 |" in body
    worst = max(r["overhead"] for r in rows)
    assert f"Goal ≤ 5 % — {'met' if worst <= 0.05 else 'NOT met'} (worst {100 * worst:+.1f} %)" in body


def test_gpu_section_says_plainly_when_there_is_no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the branch a CPU-only machine takes
    body, rows = gpu_benchmark()
    assert rows == [] and "Not measured: no CUDA GPU" in body


@pytest.mark.parametrize("only,repeats,match", [(["nope"], None, "unknown benchmark 'nope'"),
                                                (["spectral"], 0, "--repeats must be >= 1"),
                                                (["spectral"], -3, "--repeats must be >= 1")])
def test_bad_requests_are_refused_before_anything_runs(tmp_path, only, repeats, match):
    with pytest.raises(ValueError, match=match):
        runner.run(only=only, out=tmp_path / "perf.md", repeats=repeats)
    assert not (tmp_path / "perf.md").exists()


def test_committed_perf_md_speaks_of_the_project_only():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "results" / "perf.md").read_text()
    assert "issue" not in text.lower()


def test_gpu_check_runs_on_cpu_with_a_tiny_model(tmp_path):
    """scripts/gpu_check.sh end to end on a CPU: synthetic zip, loader, bare step, every benchmark path trained
    by the real trainer and sampled; and a clear refusal of CUDA where there is none."""
    import subprocess
    from pathlib import Path

    from hdfm_bench.perf.harness import BENCH_PATHS

    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "gpu.md"
    args = ["bash", str(root / "scripts" / "gpu_check.sh"), "--size", "tiny", "--patch", "4", "--resolution", "16",
            "--batch", "8", "--steps", "15", "--images", "48", "--workers", "1", "--classes", "4", "--repeats", "2"]
    run = subprocess.run(args + ["--device", "cpu", "--out", str(out)], capture_output=True, text=True, cwd=root)
    assert run.returncode == 0, run.stderr[-2000:]
    text = out.read_text()
    assert text == run.stdout
    assert "ViT tiny/4 (JiT) at 16², batch 8, 15 steps of the real trainer" in text
    rows = [ln.split("|")[1:-1] for ln in text.splitlines() if ln.startswith("| ") and "---" not in ln][1:]
    assert [r[0].strip() for r in rows] == [name for name, _ in BENCH_PATHS]
    for r in rows:
        train_ips, ratio, sample_ips = (float(r[k].replace(",", "")) for k in (1, 2, 3))
        # a timing ratio of 15 tiny steps beside other tests: only its form is checked (no timed assertion)
        assert train_ips > 0 and math.isfinite(ratio) and ratio > 0 and sample_ips > 0 and r[5].strip() == "—"
    assert float(text.split("Data loader alone: ")[1].split(" ")[0].replace(",", "")) > 0
    refused = subprocess.run(args + ["--device", "cuda", "--out", str(tmp_path / "none.md")], capture_output=True,
                             text=True, cwd=root)
    assert refused.returncode == 2 and not (tmp_path / "none.md").exists()
    assert refused.stderr.strip().splitlines()[-1].startswith("gpu_check: error: the GPU check needs a CUDA GPU")
