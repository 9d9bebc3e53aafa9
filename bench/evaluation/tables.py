"""Paper-style tables from the results store (tabulate: Markdown, LaTeX, CSV).

The table never recomputes a metric: it reads long-format rows, groups them by (row, column),
aggregates over seeds (mean ± std and the best seed) and refuses to put numbers measured under
different protocols in one column, naming the field that differs.
"""
from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence

import pandas as pd

#: protocol fields that must agree inside one table column (what makes two numbers comparable)
MUST_MATCH = ("task", "extractor", "extractor_hash", "n_gen", "n_ref", "reference_split",
              "reference_hash", "resolution")
#: protocol fields that must agree inside one table *cell*: only seeds (training run, sampling seed,
#: image-seed range) may be averaged; a cell never mixes samplers, budgets, guidance, EMA or checkpoints
SAME_SETTING = ("sampler", "sampler_params", "steps", "nfe", "cfg_scale", "cfg_interval", "ema", "checkpoint_step",
                "n_gen", "kid_subset_size", "metrics")
#: higher is better for these metrics; everything else lower is better, but for the spectral ratios
#: (generated / reference power), where 1 is ideal: the best is the closest to 1 on a log scale
HIGHER_IS_BETTER = {"precision", "recall", "accuracy", "class_accuracy"}
CLOSEST_TO_ONE = {"r_hf", "band_ratio"}


#: output formats of :func:`make_table`
FORMATS = ("markdown", "latex", "csv")


class TableError(ValueError):
    """Rows that cannot share a column, or a bad table request."""


def _badness(metric: str, value: float) -> float:
    base = metric.split("@")[0]
    if base in HIGHER_IS_BETTER:
        return -value
    if base in CLOSEST_TO_ONE:
        return abs(math.log(value)) if value > 0 else math.inf
    return value


def protocol_frame(df: pd.DataFrame) -> pd.DataFrame:
    return df["protocol_json"].map(json.loads).apply(pd.Series) if len(df) else pd.DataFrame()


def check_protocols(df: pd.DataFrame, column: str = "metric", allow_mixed: bool = False) -> list[str]:
    """Refuse columns mixing protocols; return warnings (budget differences, overridden refusals)."""
    warnings: list[str] = []
    proto = protocol_frame(df)
    for col_value, idx in df.groupby(column).groups.items():
        sub = proto.loc[idx]
        for field in MUST_MATCH:
            if field not in sub:
                continue
            values = sub[field].map(lambda v: json.dumps(v, sort_keys=True, default=str)).unique()
            if len(values) > 1:
                msg = (f"column '{col_value}' mixes protocols: field '{field}' differs "
                       f"({', '.join(sorted(values)[:3])}); pass allow_mixed to override")
                if not allow_mixed:
                    raise TableError(msg)
                warnings.append(msg)
    odd, unknown = budget_outliers(df, column, proto)
    if odd:
        warnings.append(f"budget differs for: {', '.join(map(str, odd))} (flagged †)")
    if unknown:  # scored images (hdfm-bench score) have no training budget to compare: said, not flagged
        warnings.append(f"training budget unknown for: {', '.join(map(str, unknown))} (scored images)")
    return warnings


def budget_outliers(df: pd.DataFrame, column: str = "metric", proto: pd.DataFrame | None = None) -> tuple[list, list]:
    """(methods whose training budget differs from the most common one in some column, methods whose rows
    carry no budget); budgets are compared within a column (columns may differ, e.g. the toy's D)."""
    proto = protocol_frame(df) if proto is None else proto
    if "budget" not in proto:
        return [], []
    known = proto["budget"].map(lambda b: isinstance(b, dict))
    budgets = proto["budget"][known].map(lambda b: json.dumps(_budget_key(b), sort_keys=True))
    odd: dict = {}
    for _, idx in df[known].groupby(column).groups.items():
        col = budgets.loc[idx]
        if col.nunique() > 1:
            odd.update(dict.fromkeys(df.loc[col.index[col != col.mode().iloc[0]], "method"]))
    unknown = dict.fromkeys(df.loc[~known, "method"]) if known.any() else {}
    return list(odd), list(unknown)


def _json(v) -> str:
    """A protocol value as compact, key-sorted JSON, with None shown as none (EMA none = raw weights)."""
    return "none" if v is None else json.dumps(v, sort_keys=True, default=str)


def separate_settings(df: pd.DataFrame, row: str = "method", column: str = "metric",
                      split: bool = False) -> pd.DataFrame:
    """Refuse (TableError naming the row, column and field) a cell whose rows differ in anything but
    their seeds (:data:`SAME_SETTING`, and the training budget); with ``split`` each setting gets its
    own row instead, labelled with the fields that differ (e.g. ``noise_fm [steps=5]``)."""
    if df.empty:
        return df
    protos = df["protocol_json"].map(json.loads)  # as stored: None stays None (a frame would make it NaN)
    fields = [f for f in (*SAME_SETTING, "budget") if protos.map(lambda p, f=f: f in p).any()]
    keys = pd.DataFrame({f: protos.map(lambda p, f=f: _json(_budget_key(p.get(f)) if f == "budget" else p.get(f)))
                         for f in fields}, index=df.index)
    varying: dict = {}
    for (r, c), idx in df.groupby([row, column], sort=False).groups.items():
        for f in fields:
            values = keys.loc[idx, f].unique()
            if len(values) > 1:
                if not split:
                    raise TableError(f"row '{r}', column '{c}' would average rows measured differently: field '{f}' "
                                     f"differs ({', '.join(sorted(values)[:3])}); only seeds are aggregated — split "
                                     f"the rows (--split) or select one setting")
                varying.setdefault(r, []).append(f)
    if not varying:
        return df
    labels = df[row].astype(str).copy()
    for r, fs in varying.items():
        fs = list(dict.fromkeys(fs))
        mask = df[row] == r
        labels[mask] = [f"{r} [{', '.join(f'{f}={keys.at[i, f]}' for f in fs)}]" for i in df.index[mask]]
    return df.assign(**{row: labels})


def _budget_key(b) -> dict:
    if not isinstance(b, dict):
        return {}
    return {k: b.get(k) for k in ("images_seen", "parameters", "batch_size", "steps")}


def aggregate(df: pd.DataFrame, row: str = "method", column: str = "metric",
              seed_field: str = "seed") -> pd.DataFrame:
    """Mean, std, best and count over seeds for each (row, column).

    A "seed" is one (run, sampling seed) pair: rows of the same method from runs trained with
    different seeds (a sweep's seed axis) count as separate seeds, as do sampling seeds of one run."""
    proto = protocol_frame(df)
    sampling = proto[seed_field].astype(str) if seed_field in proto else "0"
    run = df["run_id"].astype(str) if "run_id" in df else ""
    df = df.assign(_seed=run + "/" + sampling)
    out = []
    for (r, c), g in df.groupby([row, column], sort=False):
        vals = g["value"].astype(float)
        best = min(vals, key=lambda v: _badness(str(c), v))
        out.append({row: r, column: c, "mean": vals.mean(), "std": vals.std(ddof=1) if len(vals) > 1 else 0.0,
                    "best": best, "n_seeds": g["_seed"].nunique()})
    return pd.DataFrame(out)


@dataclasses.dataclass
class Table:
    """The cells of a paper-style table, before any format: ``body`` holds one line per row — (label,
    flagged for another budget, cells) — and each cell is None (no rows) or (text, best of its column)."""

    row: str
    columns: list[str]
    body: list[tuple[str, bool, list[tuple[str, bool] | None]]]
    aggregated: pd.DataFrame
    warnings: list[str]
    seeds: tuple[int, int]  # the fewest and the most seeds of a cell


def table_cells(df: pd.DataFrame, row: str = "method", column: str = "metric", columns: Sequence[str] | None = None,
                allow_mixed: bool = False, digits: int = 4, split: bool = False, pm: str = "±") -> Table:
    """What :func:`make_table` prints, as cells: "mean ± std (best seed)" per row and column (the mean
    alone for one seed), the best mean of each column marked. Refuses what make_table refuses."""
    if df.empty:
        raise TableError("no results to tabulate")
    if columns:
        missing = [c for c in columns if c not in set(df[column])]
        if missing:
            raise TableError(f"no rows for column(s) {', '.join(missing)}; have {', '.join(sorted(set(df[column])))}")
        df = df[df[column].isin(columns)]
    warnings = check_protocols(df, column, allow_mixed)
    df = separate_settings(df, row, column, split)
    agg = aggregate(df, row, column)
    cols = list(columns or dict.fromkeys(agg[column]))
    flagged = {str(m) for m in budget_outliers(df, column)[0]}
    best = {c: min(agg[agg[column] == c]["mean"], key=lambda v: _badness(c, v)) for c in cols}
    body = []
    for r in dict.fromkeys(agg[row]):
        cells: list[tuple[str, bool] | None] = []
        for c in cols:
            cell = agg[(agg[row] == r) & (agg[column] == c)]
            if cell.empty:
                cells.append(None)
                continue
            m, sd, n, b = (cell[k].iloc[0] for k in ("mean", "std", "n_seeds", "best"))
            cells.append((f"{m:.{digits}g}" + (f" {pm} {sd:.2g} (best {b:.{digits}g})" if n > 1 else ""),
                          bool(m == best[c])))
        body.append((str(r), str(r) in flagged, cells))
    seeds = sorted(set(agg["n_seeds"]))
    return Table(row, cols, body, agg, warnings, (int(seeds[0]), int(seeds[-1])))


def seeds_note(table: Table, pm: str = "±") -> str:
    """What the spread and the best of the cells are taken over (EDM's seed ritual, made explicit);
    empty when every cell is one seed."""
    lo, hi = table.seeds
    if hi <= 1:
        return ""
    over = f"{lo}" if lo == hi else f"{lo}–{hi}"
    return (f"Cells: mean {pm} std over {over} seeds — distinct (training run, sampling seed) pairs, each "
            "sampling seed its own range of image seeds — and (best …) = the best of them.")


def make_table(df: pd.DataFrame, fmt: str = "markdown", row: str = "method", column: str = "metric",
               columns: Sequence[str] | None = None, allow_mixed: bool = False,
               digits: int = 4, split: bool = False) -> tuple[str, list[str]]:
    """A paper-style table: one row per method, one column per metric, "mean ± std (best seed)".

    ``fmt``: markdown | latex | csv. The best value of each column is bold (markdown/latex). Only seeds
    are aggregated: rows of one cell measured with different settings are refused, or with ``split``
    shown as separate rows (:func:`separate_settings`).
    Returns the text and the warnings (budget flags, overridden protocol refusals).
    """
    from tabulate import tabulate

    if fmt not in FORMATS:
        raise TableError(f"unknown table format '{fmt}'; known: {', '.join(FORMATS)}")
    pm = "±" if fmt != "latex" else "$\\pm$"
    t = table_cells(df, row, column, columns, allow_mixed, digits, split, pm)
    if fmt == "csv":
        return t.aggregated.to_csv(index=False), t.warnings
    bold = (lambda s: f"**{s}**") if fmt == "markdown" else (lambda s: f"\\textbf{{{s}}}")
    body = [[f"{label}{' †' if flagged else ''}"] + ["—" if c is None else bold(c[0]) if c[1] else c[0] for c in cells]
            for label, flagged, cells in t.body]
    table = tabulate(body, headers=[row] + t.columns, tablefmt="github" if fmt == "markdown" else "latex_raw")
    note = seeds_note(t, pm)
    if note:
        table += ("\n\n" + note) if fmt == "markdown" else ("\n% " + note)
    return table, t.warnings


def parse_seeds(text: str, option: str = "--select-seeds") -> tuple[int, ...]:
    """``0,2,5-7`` → (0, 2, 5, 6, 7): a list of sampling seeds given on the command line."""
    out: list[int] = []
    for part in filter(None, (p.strip() for p in str(text).split(","))):
        lo, _, hi = part.partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()) or (hi and int(hi) < int(lo)):
            raise TableError(f"{option}: expected seeds such as 0,1 or 0-3, got '{text}'")
        out.extend(range(int(lo), int(hi or lo) + 1))
    if not out:
        raise TableError(f"{option}: no seeds given")
    return tuple(dict.fromkeys(out))


def check_selection(axes: Sequence[str], select_seeds: Sequence[int] = (), report_seeds: Sequence[int] = ()) -> None:
    """Refuse (TableError) selection axes that are not setting fields, and overlapping seed sets."""
    unknown = [a for a in axes if a not in SAME_SETTING]
    if unknown or not axes:
        raise TableError(f"cannot select over {', '.join(unknown) or 'nothing'}: setting fields are "
                         f"{', '.join(SAME_SETTING)}")
    both = sorted(set(select_seeds) & set(report_seeds))
    if both:
        raise TableError(f"selection and report seeds overlap ({', '.join(map(str, both))}): the reported number "
                         "would be the one the choice was fitted to")


def _settings_frame(df: pd.DataFrame, axes: Sequence[str]) -> pd.DataFrame:
    check_selection(axes)
    if df.empty:
        raise TableError("no results to select from")
    protos = df["protocol_json"].map(json.loads)
    setting = pd.DataFrame({a: protos.map(lambda p, a=a: _json(p.get(a))) for a in axes}, index=df.index)
    return df.assign(_setting=setting.apply(tuple, axis=1), _seed=protos.map(lambda p: p.get("seed")),
                     _proto=protos)


def choose_settings(df: pd.DataFrame, axes: Sequence[str], select_seeds: Sequence[int], metric: str = "fid",
                    by: Sequence[str] = ("method",)) -> tuple[dict, pd.DataFrame]:
    """Each group's best setting over ``axes`` on sampling seeds A (see :func:`best_settings`).

    Returns ({group: {axis: value as in the rows' protocol}}, the selection grid: one line per group
    and setting with the mean of ``metric`` over seeds A, its count and ``chosen``)."""
    return _choose(_settings_frame(df, axes), axes, select_seeds, metric, by)


def _choose(df: pd.DataFrame, axes: Sequence[str], select_seeds: Sequence[int], metric: str,
            by: Sequence[str]) -> tuple[dict, pd.DataFrame]:
    chosen, grid = {}, []
    for group, g in df.groupby(list(by), sort=False):
        group = group if isinstance(group, tuple) else (group,)
        sel = g[g["_seed"].isin(select_seeds) & (g["metric"] == metric)]
        if sel.empty:
            raise TableError(f"{' / '.join(map(str, group))}: no '{metric}' rows with selection seeds "
                             f"{list(select_seeds)}")
        means = sel.groupby("_setting", sort=False)["value"].agg(["mean", "count"])
        best = min(means.index, key=lambda k: _badness(metric, means.at[k, "mean"]))
        proto = sel.loc[sel["_setting"] == best, "_proto"].iloc[0]
        chosen[group] = {a: proto.get(a) for a in axes}
        for k, m in means.iterrows():
            grid.append({**dict(zip(by, group)), **dict(zip(axes, k)), f"{metric} (seeds A)": m["mean"],
                         "n": int(m["count"]), "chosen": k == best})
    return chosen, pd.DataFrame(grid)


def setting_label(setting: dict) -> str:
    """``cfg_scale=2.0, ema=0.999, steps=20``: how a chosen setting extends a row's name."""
    return ", ".join(f"{a}={_json(v)}" for a, v in setting.items())


def best_settings(df: pd.DataFrame, axes: Sequence[str], select_seeds: Sequence[int],
                  report_seeds: Sequence[int], metric: str = "fid", by: Sequence[str] = ("method",),
                  relabel: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each group's best setting over ``axes``, chosen on sampling seeds A and reported on seeds B.

    For every group of ``by`` (a table row, or a row and a column), the mean of ``metric`` over the
    rows of sampling seeds ``select_seeds`` is computed per setting — the values of the protocol
    fields ``axes``, e.g. cfg_scale × ema × steps — and the best setting (lower, or higher for
    accuracy-like metrics) is chosen; the rows of that setting with sampling seeds ``report_seeds``
    (disjoint from A, so the reported number is not the one the choice was fitted to) are returned,
    every metric, with the row label extended by the setting (unless ``relabel`` is false). Returns
    (reported rows, the full selection grid of :func:`choose_settings`).
    """
    check_selection(axes, select_seeds, report_seeds)
    framed = _settings_frame(df, axes)
    chosen, grid = _choose(framed, axes, select_seeds, metric, by)
    keep = []
    for group, g in framed.groupby(list(by), sort=False):
        group = group if isinstance(group, tuple) else (group,)
        best = tuple(_json(v) for v in chosen[group].values())
        rep = g[g["_seed"].isin(report_seeds) & (g["_setting"] == best)]
        if rep.empty:
            raise TableError(f"{' / '.join(map(str, group))}: the chosen setting ({setting_label(chosen[group])}) has "
                             f"no rows with report seeds {list(report_seeds)}; evaluate it on those seeds")
        keep.append(rep.assign(**{by[0]: f"{group[0]} [{setting_label(chosen[group])}]"}) if relabel else rep)
    return pd.concat(keep).drop(columns=["_setting", "_seed", "_proto"]), grid


def selection_grid(grid: pd.DataFrame, axes: Sequence[str], metric: str = "fid", fmt: str = "markdown") -> str:
    """The full selection grid of :func:`best_settings` as one table (the chosen setting starred)."""
    from tabulate import tabulate

    col = f"{metric} (seeds A)"
    shown = grid.assign(**{col: [f"{v:.4g}{' *' if c else ''}" for v, c in zip(grid[col], grid["chosen"])]})
    shown = shown.drop(columns=["chosen"])
    if fmt == "csv":
        return shown.to_csv(index=False)
    return tabulate(shown.values.tolist(), headers=list(shown.columns),
                    tablefmt="github" if fmt == "markdown" else "latex_raw")


def best_setting_report(table: str, grid: pd.DataFrame, axes: Sequence[str], select_seeds: str, report_seeds: str,
                        metric: str = "fid", fmt: str = "markdown") -> str:
    """``table`` (made from the rows :func:`best_settings` reported) headed by what was chosen how, and
    followed by the full selection grid; the seeds are shown as given (``select_seeds``, e.g. "0,1")."""
    return (f"Best setting per row over {' × '.join(axes)}, selected on sampling seeds {select_seeds} "
            f"({metric}), reported on sampling seeds {report_seeds}:\n\n{table}\n\n"
            f"Selection grid ({metric} on seeds {select_seeds}; * = chosen):\n\n"
            + selection_grid(grid, axes, metric, fmt))


__all__ = ["FORMATS", "MUST_MATCH", "SAME_SETTING", "TableError", "separate_settings", "Table", "table_cells",
           "seeds_note", "check_protocols", "aggregate", "make_table", "protocol_frame", "best_settings", "parse_seeds",
           "selection_grid", "choose_settings", "setting_label", "check_selection", "best_setting_report"]
