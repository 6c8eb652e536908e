"""The paper's tables rebuilt from the results store, with the paper's numbers beside
ours: a long frame (one value per row, source, dataset and column; what CSV gets)
and a wide one for Markdown and LaTeX (the best of our values in bold)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from tabulate import tabulate

from wsolbench.core.record import RunRecord
from wsolbench.reporting.paperspec import Line, RunIndex, Spec, dataset_title, paper_numbers

LONG = ["row", "label", "source", "dataset", "column", "value", "sd", "n"]
# A source's words in a wide table; the others are shown as they are.
SOURCE_TEXT = {"delta": "Δ ours − paper", "paper-other-data": "paper, {ds} (other data)"}
SOURCE_TEXT |= {"paper-only": "paper only"}  # "ours" and "paper" read as they are


@dataclass
class Table:
    spec: Spec
    datasets: list[str]
    long: pd.DataFrame
    missing: list[dict[str, Any]] = field(default_factory=list)
    pooled: dict[str, set[str]] = field(default_factory=dict)  # row label -> run ids pooled


def run_value(record: RunRecord, metric: str) -> float | None:
    """A metric of a run, or a record number such as ``frozen_percent``."""
    value = record.metrics.get(metric, getattr(record, metric, None))
    return None if value is None else float(value)


def mean_sd(values: list[float]) -> tuple[float | None, float | None]:
    """Mean over seeds, and the sample sd (None for fewer than two values)."""
    mean = float(np.mean(values)) if values else None
    return mean, float(np.std(values, ddof=1)) if len(values) > 1 else None


def t_interval(values: list[float], level: float = 0.95) -> tuple[float | None, float | None]:
    """The mean's t-interval over seeds (None for fewer than two seeds)."""
    if len(values) < 2:
        return None, None
    from scipy.stats import t

    half = t.ppf(0.5 + level / 2, len(values) - 1) * np.std(values, ddof=1) / np.sqrt(len(values))
    return float(np.mean(values) - half), float(np.mean(values) + half)


def _row_order(spec: Spec, paper: pd.DataFrame) -> list[tuple[str, Line | None, str]]:
    """(key, spec row or None, label): the paper's row order, our rows where the paper
    has them, our other rows after."""
    ours = {r.key: r for r in spec.rows}
    order = []
    for key, label in paper[["row", "label"]].drop_duplicates("row").itertuples(index=False):
        row = ours.pop(key, None)
        order.append((key, row, row.label if row else label))
    order += [(key, row, row.label) for key, row in ours.items()]
    return order


def build_table(spec: Spec, index: RunIndex, datasets: list[str] | None = None) -> Table:
    datasets = datasets or spec.datasets
    paper = paper_numbers(spec)
    published = {
        (r.row, r.dataset, r.column): float(r.value) for r in paper.itertuples(index=False)
    }
    out, missing, pooled = [], [], {}
    for key, row, label in _row_order(spec, paper):
        measured = row is not None and not row.paper_only
        if not measured:
            why = row.paper_only if row else "not implemented in wsolbench"
            label = f"{label} [{why}]"
        for ds in datasets:
            # A dataset the paper does not report shows the paper's first one, for
            # scale only: no difference is taken across datasets.
            pds = ds if ds in spec.datasets else spec.datasets[0]
            for col in (c for c in spec.columns if c.on(ds)):
                cell = {"row": key, "label": label, "dataset": ds, "column": col.key}
                paper_value = published.get((key, pds, col.key))
                if measured and not col.paper_only:
                    given = {"dataset": ds, **spec.base, **row.settings, **col.settings}
                    runs = index.find(given, free=col.free)
                    pooled.setdefault(label, set()).update(r.run_id for r in runs)
                    if not runs and not col.free:
                        missing.append(given)
                    vals = [v for r in runs if (v := run_value(r, col.metric)) is not None]
                    mean, sd = mean_sd(vals)
                    lo, hi = t_interval(vals)
                    ours = {"value": mean, "sd": sd, "n": len(vals), "low": lo, "high": hi}
                    out.append({**cell, "source": "ours", **ours})
                    if mean is not None and paper_value is not None and pds == ds:
                        out.append({**cell, "source": "delta", "value": mean - paper_value})
                if paper_value is not None:
                    source = "paper" if measured else "paper-only"
                    source = "paper-other-data" if pds != ds else source
                    out.append(
                        {**cell, "source": source, "value": paper_value, "value_dataset": pds}
                    )
    # Which data each value is from: ours the row's dataset, the paper's its own (set
    # before the frame is made: filling an all-missing column with text later is a
    # dtype change pandas is deprecating).
    for row in out:
        row.setdefault("value_dataset", row["dataset"])
    long = pd.DataFrame(out, columns=[*LONG, "value_dataset", "low", "high"])
    long["n"] = long["n"].astype("Int64")
    return Table(spec, datasets, long, missing, pooled)


def _header(table: Table, col: Line, ds: str) -> str:
    label = f"{col.label} (paper only)" if col.paper_only else col.label
    return f"{dataset_title(ds)} {label}" if len(table.datasets) > 1 else label


def wide(table: Table, ci: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(text, bold): one line per row and source, one column per dataset and column;
    ``bold`` marks the best of our values in each column. ``ci``: our cells show the
    95% t-interval over seeds; a cell from one seed is marked † (where its row's n
    does not already say so)."""
    headers = {
        (ds, c.key): _header(table, c, ds)
        for ds in table.datasets
        for c in table.spec.columns
        if c.on(ds)
    }
    best_ok = {c.key: c.best for c in table.spec.columns}
    free = {c.key: c.free for c in table.spec.columns}  # pooled wider: not counted in n
    lines: dict[tuple[str, str], dict[str, Any]] = {}
    cells: dict[tuple[str, str], dict[str, tuple]] = {}  # our cells' (n, low, high)
    for r in table.long.itertuples(index=False):
        line = lines.setdefault((r.row, r.source), {"row": r.label, "source": r.source, "n": []})
        line[headers[(r.dataset, r.column)]] = r.value
        if r.source == "ours":
            cells.setdefault((r.row, r.source), {})[headers[(r.dataset, r.column)]] = (
                r.n,
                r.low,
                r.high,
            )
        if r.source == "ours" and not free[r.column]:
            line["n"].append(r.n)
    frame = pd.DataFrame(list(lines.values()), columns=["row", "source", "n", *headers.values()])
    values = frame[list(headers.values())].astype(float)
    bold = _best(frame, values, {head: best_ok[key] for (_, key), head in headers.items()})
    ref = table.spec.datasets[0]
    frame["source"] = [
        _source_text(s, ns, dataset_title(ref))
        for s, ns in zip(frame["source"], frame["n"], strict=True)
    ]
    keys = list(lines)
    text = values.apply(
        lambda col: [
            _cell(v, key[1], cells.get(key, {}).get(col.name), ci, _mixed(cells.get(key, {})))
            for v, key in zip(col, keys, strict=True)
        ]
    )
    text.insert(0, "source", frame["source"])
    text.insert(0, "row", frame["row"])
    bold.insert(0, "source", False)
    bold.insert(0, "row", False)
    return text, bold


def _best(frame: pd.DataFrame, values: pd.DataFrame, ranks: dict[str, bool]) -> pd.DataFrame:
    """Bold marks the best of a column as papers do: over our rows and the published
    ones (not differences, nor numbers of another dataset), where two or more compete;
    never in a column whose spec says ``best: false``."""
    ranked = frame["source"].isin(("ours", "paper", "paper-only"))
    best = values[ranked].max().where(values[ranked].count() > 1)
    bold = values.eq(best) & ranked.to_numpy()[:, None]
    for head, ok in ranks.items():
        bold[head] &= ok
    return bold


def _mixed(row: dict[str, tuple]) -> bool:
    """Whether a row of our cells pools different numbers of seeds."""
    return len({int(n) for n, _, _ in row.values() if not pd.isna(n) and n}) > 1


def _cell(value: float, source: str, stats: tuple | None, ci: bool, mixed: bool) -> str:
    if pd.isna(value):
        return "—"
    if source == "delta":
        return f"{value:+.2f}"
    text = f"{value:.2f}"
    if source != "ours" or stats is None:
        return text
    n, low, high = stats
    if ci and not pd.isna(low):
        text += f" [{low:.2f}, {high:.2f}]"
    return text + ("†" if n == 1 and (ci or mixed) else "")


def _source_text(source: str, ns: list, ref: str) -> str:
    text = SOURCE_TEXT.get(source, source).format(ds=ref)
    if source == "ours":
        ns = sorted({int(n) for n in ns if n})  # seeds per cell; a range if they differ
        count = f"n={ns[0]}" if len(ns) == 1 else f"n={ns[0]}-{ns[-1]}" if ns else "no runs"
        text = f"ours ({count})"
    return text


def render_table(table: Table, fmt: str, ci: bool = False) -> str:
    """The table as csv (long: one row per cell and source; ``ci`` adds the interval
    columns), Markdown or LaTeX (wide)."""
    if fmt == "csv":
        columns = [*LONG, "value_dataset", *(("low", "high") if ci else ())]
        return table.long[columns].to_csv(index=False, float_format="%.4f")
    text, bold = wide(table, ci)
    title = f"{table.spec.title} ({', '.join(dataset_title(d) for d in table.datasets)})"
    if ci:
        title += "; ours: mean [95% t-interval over seeds], † one seed"
    if fmt == "md":
        marked = text.where(~bold, "**" + text + "**")
        body = tabulate(
            marked, headers="keys", tablefmt="github", showindex=False, disable_numparse=True
        )
        return f"{title}\n\n{body}\n"
    styler = text.style.hide(axis="index")
    styler = styler.apply(lambda _: bold.replace({True: "textbf: --rwrap;", False: ""}), axis=None)
    styler = styler.format(lambda v: "--" if v == "—" else v, escape="latex")
    styler = styler.format_index(escape="latex", axis=1)
    align = "ll" + "r" * (text.shape[1] - 2)
    # LaTeX numbers the table itself: the caption drops the spec's own "Table N." prefix.
    caption = re.sub(r"^Table \d+\.\s*", "", title)
    label = f"tab:{table.spec.name}"
    return styler.to_latex(
        hrules=True, column_format=align, caption=_latex_escape(caption), label=label
    )


def _latex_escape(text: str) -> str:
    for char in "&%$#_":
        text = text.replace(char, "\\" + char)
    return text
