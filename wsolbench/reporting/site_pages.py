"""The report's pages beyond the index: one per run, the paper's tables, paired
comparisons and the sweeps (``site.build_site`` calls them)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from wsolbench.core.errors import UserError
from wsolbench.core.record import RunRecord
from wsolbench.core.store import Store, read_jobs
from wsolbench.evaluation.perimage import load
from wsolbench.reporting import PICKS
from wsolbench.reporting.compare import compare_rows, open_side
from wsolbench.reporting.paperspec import RunIndex, Spec
from wsolbench.reporting.run_figure import run_svg
from wsolbench.reporting.site_html import digest, esc, page, table
from wsolbench.reporting.tables import build_table, wide

MAX_COMPARISONS = 20  # pairs of runs on the same images, at most


def _arrays(store: Store, run_id: str) -> tuple[dict, str]:
    path = store.run_dir(run_id) / "per_image.npz"
    if not path.is_file():
        return {}, "no per_image.npz: the per-image figures are empty"
    try:
        return load(path), ""
    except UserError as e:
        return {}, e.one_line()


def _overlays(store: Store, r: RunRecord, folder: Path, data_root: str | None) -> str:
    from wsolbench.reporting.show import show  # plans the dataset: only when drawn

    parts = []
    for pick in PICKS:
        name = f"{r.run_id}-{pick}.png"
        try:
            show(store, [r.run_id], 8, pick, folder / name, data_root)
        except UserError as e:
            return f'<p class="note">overlays: {esc(e.one_line())}</p>'
        parts.append(f'<h3>{pick}</h3><img src="img/{esc(name)}" alt="{pick} test images">')
    return "".join(parts)


def run_page(store: Store, r: RunRecord, out: Path, data_root: str | None, overlays: bool) -> None:
    """The run's record, its five curves and its worst / best / random test images."""
    arrays, note = _arrays(store, r.run_id)
    folder = out / "runs" / "img"
    metrics = table(
        [("metric", "metric"), ("value", "value")],
        [[(esc(k), k), (f"{v:.2f}", v)] for k, v in sorted(r.metrics.items())],
        "sortable",
    )
    recipe = (r.recipe or {}).get("name", "—")
    body = (
        f"<p>{esc(r.method)} on {esc(r.dataset)}, recipe {esc(recipe)}, protocol "
        f"{esc(r.protocol_version)}, frame {esc((r.protocol or {}).get('frame'))}.</p>"
        f"{metrics}{run_svg(r, arrays)}"
        f'<p class="note">{esc(note)}</p>'
        f"{_overlays(store, r, folder, data_root) if overlays else ''}"
        f"<h2>Record</h2><pre>{esc(json.dumps(r.to_dict(), indent=1, default=str))}</pre>"
    )
    page(out / "runs", f"{r.run_id}.html", f"run {r.run_id}", body, depth=1)


def _paper_table(spec: Spec, index: RunIndex, datasets: list[str]) -> str:
    built = build_table(spec, index, datasets)
    text, bold = wide(built)
    headers = [(c, c) for c in text.columns]
    rows = []
    for i, (_, line) in enumerate(text.iterrows()):
        cells = [esc(line[c]) for c in text.columns]
        marked = [
            f"<b>{t}</b>" if bold.iloc[i][c] else t
            for t, c in zip(cells, text.columns, strict=True)
        ]
        rows.append(list(zip(marked, [line[c] for c in text.columns], strict=True)))
    links = "".join(
        f"<li>{esc(label)}: "
        + " ".join(f'<a href="runs/{esc(i)}.html">{esc(i)}</a>' for i in sorted(ids))
        + "</li>"
        for label, ids in built.pooled.items()
        if ids
    )
    pooled = f"<p>Runs each row of ours pools:</p><ul>{links}</ul>" if links else ""
    return table(headers, rows, "sortable") + pooled


def tables_page(out: Path, index: RunIndex, datasets: set[str], specs: dict[str, Spec]) -> None:
    """Every paper table on the datasets the store has runs for (the paper's own where it
    has none): ours, the paper's numbers, the difference."""
    parts = []
    for spec in specs.values():
        if spec.kind != "table":
            continue
        ds = sorted(d for d in datasets if d in spec.datasets) or sorted(datasets) or spec.datasets
        ds = [d for d in ds if any(c.on(d) for c in spec.columns)]
        if ds:  # the benchmark's table has no column on the synthetic data
            parts.append(f"<h2>{esc(spec.title)}</h2>{_paper_table(spec, index, ds)}")
    note = (
        '<p class="note">The WSOL benchmark\'s main table shows our runs alone: its '
        "published numbers are an image and a spreadsheet not transcribed yet.</p>"
    )
    page(out, "tables.html", "The paper's tables, ours beside them", note + "".join(parts))


def _pairs(records: list[RunRecord]) -> list[tuple[RunRecord, RunRecord]]:
    """Runs of two methods on the same dataset, frame and seed: the same test images."""
    groups: dict[tuple, list[RunRecord]] = defaultdict(list)
    for r in records:
        if r.mode != "evaluate-maps" and r.config.get("eval_split", "test") == "test":
            groups[(r.dataset, (r.protocol or {}).get("frame"), r.seed)].append(r)
    pairs = []
    for runs in groups.values():
        by_method = {r.method: r for r in runs}
        names = sorted(by_method)
        pairs += [(by_method[a], by_method[b]) for i, a in enumerate(names) for b in names[i + 1 :]]
    return pairs[:MAX_COMPARISONS]


def _compare_one(store: Store, out: Path, a: RunRecord, b: RunRecord) -> str | None:
    try:
        rows = compare_rows(
            open_side(store, a.method, [a.run_id]), open_side(store, b.method, [b.run_id])
        )
    except UserError:
        return None  # not on the same images, or no per-image values
    headers = [("metric", "metric"), ("a", a.method), ("b", b.method), ("difference", "a - b"),
               ("interval", "95% interval")]  # fmt: skip
    cells = [
        [(esc(r["metric"]), r["metric"]), _fmt(r["a"][0]), _fmt(r["b"][0]),
         _fmt(r["difference"]), (f"[{r['low']:.2f}, {r['high']:.2f}]", r["low"])]
        for r in rows
    ]  # fmt: skip
    name = f"{a.run_id}--{b.run_id}.html"
    side = "".join(
        f'<div><h3><a href="../runs/{esc(r.run_id)}.html">{esc(r.run_id)}</a></h3>'
        f"{run_svg(r, _arrays(store, r.run_id)[0])}</div>"
        for r in (a, b)
    )
    body = (
        f"<p>Paired bootstrap over the test images (2,000 draws).</p>"
        f"{table(headers, cells, 'sortable')}{side}"
    )
    page(out / "compare", name, f"{a.method} against {b.method} on {a.dataset}", body, depth=1)
    return name


def _fmt(value: float | None) -> tuple[str, object]:
    return ("—", "") if value is None else (f"{value:.2f}", value)


def compare_page(store: Store, out: Path, records: list[RunRecord], state: dict) -> int:
    """A page per pair of runs on the same images (redrawn only when a record of the
    pair changed: ``state`` holds the digests each page was drawn from), and their list."""
    made = []
    for a, b in _pairs(records):
        name, key = f"{a.run_id}--{b.run_id}.html", f"{digest(a)} {digest(b)}"
        if state.get(name) != key or not (out / "compare" / name).is_file():
            if _compare_one(store, out, a, b) is None:
                continue
            state[name] = key
        made.append((a, b, name))
    items = "".join(
        f'<li><a href="compare/{esc(n)}">{esc(a.method)} against {esc(b.method)}</a> '
        f"({esc(a.dataset)}, seed {a.seed})</li>"
        for a, b, n in made
    )
    body = f"<ul>{items}</ul>" if made else "<p>No two runs on the same test images yet.</p>"
    page(out, "compare.html", "Paired comparisons", body)
    return len(made)


def _state(store: Store, run_id: str) -> tuple[str, str]:
    """The run's state from its folder, and ``running`` while it holds its lock."""
    disk, error = store.disk_state(run_id)
    if disk in ("done", "corrupt", "failed"):
        return disk, error or ""
    if store.lock_path(run_id).is_file():
        return "running", ""
    return disk or "pending", ""


def sweeps_page(store: Store, out: Path) -> None:
    """Each sweep's runs and their state (done / running / pending / failed, with the
    error line and the log path), read from its jobs.jsonl and the run folders."""
    parts = []
    for jobs in sorted((store.root / ".sweeps").glob("*/jobs.jsonl")):
        rows = []
        for run_id, entry in read_jobs(jobs).items():
            state, error = _state(store, run_id)
            link = (
                f'<a href="runs/{esc(run_id)}.html">{esc(run_id)}</a>'
                if state == "done"
                else esc(run_id)
            )
            rows.append([(link, run_id), (state, state), (esc(error), error),
                         (esc(entry.get("log")), entry.get("log") or "")])  # fmt: skip
        headers = [("run_id", "run"), ("state", "state"), ("error", "error"), ("log", "log")]
        parts.append(f"<h2>{esc(jobs.parent.name)}</h2>{table(headers, rows, 'sortable')}")
    body = "".join(parts) or "<p>No sweep has been submitted to this store.</p>"
    page(out, "sweeps.html", "Sweeps", body)
