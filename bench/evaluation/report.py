"""A store's results as one static HTML page (``hdfm-bench report``): no server, no network.

``OUT/index.html`` holds the table (the cells of ``hdfm-bench table``, :func:`.tables.table_cells`:
mean ± std over seeds, the best of each column in bold, † for another budget), the protocol every
column was measured under, each row's full protocols on demand (``<details>``), the selection grid
of a tuned table (``best``), the figures drawn from the rows (``plots.PLOTS``: FID vs NFE, FID vs
training steps, spectral band ratios, the ratio along sampling; those without data are named, not
drawn) and the images of the results folder (sample grids, earlier figures). Images lie beside the
page, in ``OUT/figures/`` and ``OUT/images/``, linked relatively: the folder can be moved or
committed as it is.

The page is rendered with jinja2 with autoescaping on: every string from a store or spec (method
labels, ``--name``, protocol fields, notes) is text in the page, never markup. The folder is built
beside ``OUT`` and swapped in only when complete; an ``OUT`` that exists and is not a report
(no ``index.html`` written by this module) is refused, never overwritten.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from hdfm_bench.core.io import fsync_dir

from . import plots, tables

TEMPLATE = Path(__file__).resolve().parent / "report.html.j2"
MARK = "<!-- hdfm-bench report -->"  # the second line of every page this module writes (after the doctype)


def check_out(out: str | os.PathLike) -> Path:
    """Refuse, before any work, an output that is a file, or a folder that is not an earlier report."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()):
        page = out / "index.html"
        if not page.is_file() or MARK not in page.read_text(encoding="utf-8", errors="replace")[:100]:
            raise ValueError(f"--out {out} is a folder that holds something other than an hdfm-bench report; "
                             "choose a new or empty folder")
    if out.parent.exists() and not os.access(out.parent, os.W_OK):
        raise ValueError(f"--out {out}: cannot write in {out.parent}")
    return out


def row_protocols(df: pd.DataFrame) -> dict[str, list[dict]]:
    """Per table row: each distinct protocol its rows carry, with the metrics and runs measured under it."""
    out: dict[str, list[dict]] = {}
    for label, g in df.groupby("method", sort=False):
        found = []
        for proto_json, h in g.groupby("protocol_json", sort=False):
            proto = json.loads(proto_json)
            found.append({"metrics": sorted(set(h["metric"])), "runs": sorted(set(h["run_id"].astype(str))),
                          "text": json.dumps(proto, indent=1, sort_keys=True, default=str)})
        out[str(label)] = found
    return out


def column_protocols(df: pd.DataFrame, columns: Sequence[str]) -> dict[str, str]:
    """The protocol fields a column's rows share (what makes its numbers comparable), as one line."""
    out = {}
    for c in columns:
        proto = json.loads(df[df["metric"] == c]["protocol_json"].iloc[0])
        fields = [f"{k} {json.dumps(proto[k], default=str)}" for k in tables.MUST_MATCH if k in proto]
        out[c] = ", ".join(fields)
    return out


def write_report(df: pd.DataFrame, out: str | os.PathLike, *, source: str, images: Sequence[Path] = (),
                 columns: Sequence[str] | None = None, best: dict | None = None, allow_mixed: bool = False,
                 split: bool = False, title: str | None = None, notes: Sequence[str] = ()) -> Path:
    """Write the report of the rows ``df`` into the folder ``out``; returns the page's path.

    ``best``: {"axes", "select", "report", "metric", "select_text", "report_text"} reports each row at
    its best setting (:func:`.tables.best_settings`) and adds the selection grid. Raises TableError /
    ValueError (one line) before anything is written."""
    import jinja2

    out = check_out(out)
    grid = None
    if best:
        df, grid = tables.best_settings(df, best["axes"], best["select"], best["report"], metric=best["metric"])
    drawn_from = df  # the figures follow each method across settings (e.g. its checkpoints): not split
    df = tables.separate_settings(df, "method", "metric", split)
    table = tables.table_cells(df, columns=columns, allow_mixed=allow_mixed, split=split)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE.parent), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        (tmp / "figures").mkdir(parents=True)
        drawn, skipped = plots.draw_kinds(drawn_from, tmp / "figures", plots.PLOTS)  # those without data: named
        figures = [{"src": f"figures/{p.name}", "caption": kind.replace("_", " ")} for kind, p in drawn.items()]
        skipped = [f"{kind}: {why}" for kind, why in skipped.items()]
        shown = []
        if images:
            (tmp / "images").mkdir()
        for k, img in enumerate(images):
            name = f"{k:03d}-{img.name}"
            shutil.copyfile(img, tmp / "images" / name)
            shown.append({"src": f"images/{name}", "caption": img.name})
        page = env.get_template(TEMPLATE.name).render(
            mark=MARK, title=title or f"hdfm-bench results: {source}", source=source,
            created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"), table=table,
            seeds_note=tables.seeds_note(table), columns=column_protocols(df, table.columns),
            protocols=row_protocols(df), best=best, grid=None if grid is None else grid.to_dict("records"),
            grid_columns=[] if grid is None else [c for c in grid.columns if c != "chosen"],
            figures=figures, skipped=skipped, images=shown, notes=[*notes, *table.warnings], n_rows=len(df))
        (tmp / "index.html").write_text(page, encoding="utf-8")
        _swap(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out / "index.html"


def _swap(new: Path, out: Path) -> None:
    """Put the finished folder ``new`` at ``out``; an earlier report there goes only once it is in place."""
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        out.rename(old)
    new.rename(out)
    fsync_dir(out.parent)
    shutil.rmtree(old, ignore_errors=True)


__all__ = ["write_report", "check_out", "row_protocols", "column_protocols", "MARK", "TEMPLATE"]
