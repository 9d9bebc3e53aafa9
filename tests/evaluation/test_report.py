"""``hdfm-bench report``: the page loads in a real headless Chromium with no console error, every image
loads, the table cells are the store's (the cells of ``hdfm-bench table``), a label that is markup shows
as text and runs nothing, and a screenshot is written; bad input is one line and writes nothing."""
from __future__ import annotations

import json
import os
import shutil

import pytest
import torch

from hdfm_bench.cli import main
from hdfm_bench.evaluation import tables
from hdfm_bench.evaluation.store import ResultStore, read_results
from tests.evaluation.helpers import PROTO
from tests.helpers import assert_png
from tests.sweeps.test_sweeps import write_spec

XSS = "<script>alert(1)</script>"
METHODS = {"noise_fm": ([3.0, 3.2], [0.98, 0.99]), XSS: ([5.0, 5.5], [0.90, 0.92]),
           'hdfm "q" & <b>bold</b>': ([4.0, 4.1], [0.95, 0.96])}


def _results(folder):
    """A results folder: a store (three methods, two seeds, FID at two NFEs) and a sample grid."""
    rows = []
    for method, (fids, accs) in METHODS.items():
        for seed, (fid, acc) in enumerate(zip(fids, accs)):
            proto = {**PROTO, "seed": seed}
            base = {"run_id": f"run-{seed}", "checkpoint_step": 700, "method": method, "path": "noise_fm"}
            rows += [{**base, "metric": "fid", "value": fid, "protocol": proto},
                     {**base, "metric": "class_accuracy", "value": acc, "protocol": proto},
                     {**base, "metric": "fid", "value": fid * 2, "protocol": {**proto, "nfe": 10, "steps": 5}}]
    folder.mkdir()
    ResultStore(folder / "results.jsonl").append(rows)
    from torchvision.utils import save_image

    g = torch.Generator().manual_seed(0)
    save_image(torch.rand(16, 1, 28, 28, generator=g), folder / "grid.png", nrow=4)
    return folder


def _chromium():
    reason = None
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        reason = "no chromium / chromedriver on PATH: run the tests through scripts/test.sh (as root it installs them)"
    if reason:
        if os.environ.get("HDFM_BENCH_REQUIRE_BROWSER"):
            pytest.fail(f"the browser test is required here, but: {reason}")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1800"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)


def test_the_page_loads_in_chromium_with_the_stores_cells(tmp_path):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    folder = _results(tmp_path / "results")
    out = tmp_path / "report"
    assert main(["report", str(folder), "--out", str(out), "--split"]) == 0
    html = (out / "index.html").read_text()
    assert XSS not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # escaped by jinja2
    df, _ = read_results(folder, "report")
    want = tables.table_cells(tables.separate_settings(df, split=True), columns=["fid", "class_accuracy"], split=True)

    driver = _chromium()
    try:
        driver.get((out / "index.html").as_uri())
        with pytest.raises(NoAlertPresentException):  # the label's script never ran
            driver.switch_to.alert.text  # noqa: B018
        assert driver.execute_script("return document.querySelectorAll('body script').length") == 0
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
        images = driver.find_elements(By.TAG_NAME, "img")
        assert len(images) >= 2  # the FID-vs-NFE figure and the folder's grid at least
        for img in images:
            assert driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img), \
                img.get_attribute("src")
        shown = []
        for tr in driver.find_elements(By.CSS_SELECTOR, "table.results tbody tr"):
            label = tr.find_element(By.CSS_SELECTOR, "th .label").text
            cells = [(td.text, "best" in (td.get_attribute("class") or ""))
                     for td in tr.find_elements(By.TAG_NAME, "td")]
            shown.append((label, cells))
        assert shown == [(label, [("—", False) if c is None else c for c in cells]) for label, _, cells in want.body]
        assert any(XSS in label for label, _ in shown)  # the markup shows as its text
        weight = driver.execute_script("return getComputedStyle(document.querySelector('td.best')).fontWeight")
        assert int(weight) >= 700
        summary = driver.find_element(By.CSS_SELECTOR, "table.results tbody tr details summary")
        summary.click()  # each row's full protocol, on demand
        pre = driver.find_element(By.CSS_SELECTOR, "table.results tbody tr details pre")
        assert pre.is_displayed() and json.loads(pre.text)["extractor"] == PROTO["extractor"]
        assert driver.save_screenshot(str(tmp_path / "report.png"))
    finally:
        driver.quit()
    assert_png(tmp_path / "report.png")


def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "results.jsonl").write_text("")
    out = tmp_path / "out"
    assert main(["report", str(empty), "--out", str(out)]) != 0
    assert "no results to report" in capsys.readouterr().err and not out.exists()

    folder = _results(tmp_path / "results")
    file = tmp_path / "a-file"
    file.write_text("keep me")
    assert main(["report", str(folder), "--out", str(file)]) != 0
    assert "is a file, not a folder" in capsys.readouterr().err and file.read_text() == "keep me"

    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert main(["report", str(folder), "--out", str(other)]) != 0
    assert "holds something other than an hdfm-bench report" in capsys.readouterr().err
    assert [p.name for p in other.iterdir()] == ["notes.txt"]

    spec = write_spec(tmp_path)
    assert main(["report", str(spec), "--out", str(out)]) != 0
    assert "no results stored yet" in capsys.readouterr().err and not out.exists()

    # an earlier report is replaced whole, and only once the new one is complete
    assert main(["report", str(folder), "--out", str(out), "--split"]) == 0
    assert main(["report", str(folder), "--out", str(out), "--split", "--metric", "nope"]) != 0
    assert "no rows for column(s) nope" in capsys.readouterr().err and (out / "index.html").is_file()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
