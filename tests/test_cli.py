"""The hdfm-bench command, the gallery, the perf harness's plumbing and atomic writes."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.fft
import torch

from bench import cli, perf
from bench.fft_dct import dct2_fft, dct_fft, heat_blur_fft, idct2_fft, idct_fft
from bench.io import atomic_path, write_text
from methods import spectral

COMMANDS = ["list", "gallery", "perf", "train", "sample", "evaluate", "table", "plot", "run"]


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "bench.cli", *args], capture_output=True, text=True)


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_everywhere(command, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"] if command is None else [command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: hdfm-bench" in out
    if command is None:
        assert all(c in out for c in COMMANDS)


def test_list_shows_the_registry(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "PATHS (6)" in out and "TARGETS (4)" in out and "SAMPLERS (7)" in out
    assert "a = 0.5" in out and "target_laplacian = 1.0" in out and "K = 200" in out
    assert cli.main(["list", "--json"]) == 0
    reg = json.loads(capsys.readouterr().out)
    assert len(reg["paths"]) >= 6 and len(reg["targets"]) >= 3 and len(reg["samplers"]) >= 6
    assert reg["samplers"]["ihdm_delta"]["paths"] == ["ihdm"]
    assert reg["paths"]["hdfm"]["default"] == {"target": "x", "loss": "v", "norm": "l2"}


def test_bad_input_is_one_line_and_nonzero(tmp_path):
    out = tmp_path / "g.png"
    res = run_cli("gallery", "--out", str(out), "--times", "0,1.5")
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == ["hdfm-bench: error: gallery times must lie in [0, 1]; got [0.0, 1.5]"]
    assert not out.exists()
    res = run_cli("perf", "--only", "nope", "--out", str(tmp_path / "p.md"))
    assert res.returncode == 2 and "unknown benchmark 'nope'" in res.stderr
    assert not (tmp_path / "p.md").exists()
    res = run_cli("frobnicate")
    assert res.returncode == 2 and "invalid choice" in res.stderr


def test_gallery_writes_a_png(tmp_path):
    out = tmp_path / "paths.png"
    assert cli.main(["gallery", "--out", str(out), "--times", "0,0.5,1"]) == 0
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert [p for p in os.listdir(tmp_path) if p != "paths.png"] == []  # no temporary left behind


def test_gallery_series_runs_from_source_to_data():
    from bench.gallery import corrupt_series
    from tasks import colour_image, digit_image

    img = colour_image("china.jpg", 16)
    assert img.shape == (1, 3, 16, 16) and img.min() >= -1 and img.max() <= 1
    assert digit_image(3, 8).shape == (1, 1, 8, 8)
    s = corrupt_series("hdfm", img, [0.0, 1.0])
    np.testing.assert_allclose(s[1], img[0], atol=1e-12)
    with pytest.raises(ValueError, match="unknown sample image"):
        colour_image("cat.png")


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    dest = tmp_path / "r.md"
    write_text(dest, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(dest) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert dest.read_text() == "old" and os.listdir(tmp_path) == ["r.md"]


def test_perf_sections_update_independently(tmp_path):
    dest = tmp_path / "perf.md"
    perf.update_section(dest, "a", "## A\nfirst")
    perf.update_section(dest, "b", "## B\nsecond")
    perf.update_section(dest, "a", "## A\nthird")
    text = dest.read_text()
    assert text.startswith("# hdfm-bench performance")
    assert "third" in text and "first" not in text and "second" in text
    assert text.index("## A") < text.index("## B")


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


def test_spectral_benchmark_reports_every_case():
    body, rows = perf.spectral_benchmark(repeats=1, sizes=(8,), batch=2, channels=1)
    assert [r["pass"] for r in rows] == ["forward", "forward+backward"]
    assert all(r["speedup"] > 0 and r["of_limit"] > 0 for r in rows)
    assert "| 2x1x8x8 | forward |" in body and "Goals:" in body


def test_atomic_write_gives_normal_permissions(tmp_path):
    dest = write_text(tmp_path / "new.md", "x")
    umask = os.umask(0)
    os.umask(umask)
    assert dest.stat().st_mode & 0o777 == 0o666 & ~umask
