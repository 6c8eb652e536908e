"""``wsolbench report html``: the store as a static site that opens from ``file://``,
every asset inside its folder: an index of every run (sortable, filterable) and of the
runs that differ only by seed (mean ± sd, 95% interval), the paper's tables with ours
beside them, a page per run (record, figures, overlays), paired comparisons and the
sweeps' states. A rebuild redraws only the runs whose record changed."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from wsolbench.core.errors import UserError
from wsolbench.core.record import RunRecord
from wsolbench.core.store import Store, atomic_write
from wsolbench.reporting.paperspec import RunIndex, load_specs
from wsolbench.reporting.runs import METRICS
from wsolbench.reporting.site_assets import CSS, JS
from wsolbench.reporting.site_html import SETTINGS, digest, esc, page, table
from wsolbench.reporting.tables import mean_sd, t_interval

STATE = ".site.json"  # each page -> digest of the records it was drawn from


def _number(value: object) -> tuple[str, object]:
    return ("—", "") if value is None else (f"{value:.2f}", value)


def _run_rows(records: list[RunRecord]) -> list[list[tuple[str, object]]]:
    rows = []
    for r in records:
        link = f'<a href="runs/{esc(r.run_id)}.html">{esc(r.run_id)}</a>'
        settings = [(esc(_setting(r, k)), _setting(r, k)) for k in ["seed", *SETTINGS]]
        protocol = (r.protocol or {}).get("version")
        metrics = [_number(r.metrics.get(k)) for k in METRICS]
        rows.append([(link, r.run_id), *settings, (esc(protocol), protocol), *metrics])
    return rows


def _setting(r: RunRecord, key: str) -> object:
    return (r.protocol or {}).get("frame") if key == "frame" else r.config.get(key)


def _groups(records: list[RunRecord]) -> str:
    """Runs that differ only by seed: mean ± sd and the 95% t-interval per metric."""
    groups: dict[tuple, list[RunRecord]] = defaultdict(list)
    for r in records:
        groups[tuple(str(_setting(r, k)) for k in SETTINGS)].append(r)
    headers = [*[(k, k) for k in SETTINGS], ("runs", "runs")]
    headers += [(k, label) for k, label in METRICS.items()]
    rows = []
    for key, runs in groups.items():
        links = " ".join(f'<a href="runs/{esc(r.run_id)}.html">{r.seed}</a>' for r in runs)
        cells = [("—" if v == "None" else esc(v), v) for v in key] + [(links, len(runs))]
        for metric in METRICS:
            values = [r.metrics[metric] for r in runs if r.metrics.get(metric) is not None]
            mean, sd = mean_sd(values)
            lo, hi = t_interval(values)
            text = "—" if mean is None else f"{mean:.2f}"
            text += f" ± {sd:.2f} [{lo:.2f}, {hi:.2f}]" if sd is not None else ""
            cells.append((text, "" if mean is None else mean))
        rows.append(cells)
    return table(headers, rows, "sortable")


def index_page(out: Path, records: list[RunRecord]) -> None:
    headers = [("run_id", "run"), ("seed", "seed"), *[(k, k) for k in SETTINGS]]
    headers += [("protocol", "protocol"), *METRICS.items()]
    body = (
        f"<p>{len(records)} runs. Click a column to sort; type to filter.</p>"
        f'<input id="filter" placeholder="filter: sat cub ...">'
        f"{table(headers, _run_rows(records), 'sortable filterable')}"
        f"<h2>Runs that differ only by seed</h2>{_groups(records)}"
    )
    page(out, "index.html", "wsolbench: every run", body)


def build_site(
    store: Store, out: Path, data_root: str | None = None, overlays: bool = True
) -> dict:
    """Write (or refresh) the site in ``out``; returns what was built and drawn."""
    from wsolbench.reporting.site_pages import compare_page, run_page, sweeps_page, tables_page

    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: is a file, not a folder")
    records = store.records()
    atomic_write(out / "assets" / "site.css", lambda f: f.write(CSS.encode()))
    atomic_write(out / "assets" / "site.js", lambda f: f.write(JS.encode()))
    try:
        state = json.loads((out / STATE).read_text())
    except (OSError, ValueError):
        state = {}
    drawn = 0
    runs = state.setdefault("runs", {})
    for r in records:
        if runs.get(r.run_id) != digest(r) or not (out / "runs" / f"{r.run_id}.html").is_file():
            run_page(store, r, out, data_root, overlays)
            runs[r.run_id] = digest(r)
            drawn += 1
    index_page(out, records)
    tables_page(out, RunIndex(records), {r.dataset for r in records}, load_specs())
    compares = compare_page(store, out, records, state.setdefault("comparisons", {}))
    sweeps_page(store, out)
    atomic_write(out / STATE, lambda f: f.write(json.dumps(state).encode()))
    return {"runs": len(records), "drawn": drawn, "comparisons": compares}
