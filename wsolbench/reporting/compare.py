"""Two methods side by side with an uncertainty: each side's mean ± sd over its seeds,
and their difference with a 95 % paired bootstrap interval over the test images.

Each draw resamples the test images with replacement, the same draw for both sides
(paired), and recomputes every run's metric on it from its per-image values (hit
bits, pixel histograms: exact, so the undrawn metric equals the record's). A side's
value is the mean over its seeds (pooled across seeds); the interval is the 2.5th to
97.5th percentile of the A - B differences over the draws."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from wsolbench.core.errors import UserError
from wsolbench.core.record import RunRecord
from wsolbench.core.store import Store
from wsolbench.evaluation.boxes import threshold_index
from wsolbench.evaluation.metrics import IOU_LEVELS, level_accuracies, pxap_and_piou
from wsolbench.evaluation.perimage import load

DRAWS = 2000
LEVEL = 0.95
CHUNK = 200  # draws computed at once (a draws x images weight matrix)
LABELS = {"gt_known_loc": "GT-known Loc", "maxboxaccv2": "MaxBoxAccV2", "pxap": "PxAP"}


@dataclass
class Side:
    """One side of a comparison: its label and its runs (seeds) on the same images."""

    label: str
    records: list[RunRecord]
    per_image: list[dict[str, np.ndarray]]


def image_values(record: RunRecord, arrays: dict[str, np.ndarray], metric: str) -> np.ndarray:
    """(images, k) per-image counts whose sum over images gives ``metric``."""
    if metric == "gt_known_loc":
        k = threshold_index(record.threshold["box"])
        return arrays["box_hit"][:, k : k + 1].astype(np.float64)
    if metric == "maxboxaccv2":
        return arrays["maxbox_hits"].reshape(len(arrays["maxbox_hits"]), -1).astype(np.float64)
    return arrays["pixel_hist"].reshape(len(arrays["pixel_hist"]), -1).astype(np.float64)


def metric_from_sums(metric: str, sums: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """The metric per draw from summed per-image values ``sums`` (draws, k) over
    ``weight`` (draws,) images, as the accumulators compute it."""
    if metric == "gt_known_loc":
        return 100 * sums[:, 0] / weight
    if metric == "maxboxaccv2":
        hits = sums.reshape(len(sums), len(IOU_LEVELS), -1)  # levels x thresholds
        return level_accuracies(hits, weight[:, None]).mean(axis=1)
    hist = sums.reshape(len(sums), 2, -1)  # object, background
    return pxap_and_piou(hist[:, 0], hist[:, 1])[0]


def side_values(side: Side, metric: str, weights: np.ndarray) -> np.ndarray:
    """The side's metric per draw (rows of ``weights``), the mean over its seeds."""
    per_seed = [
        metric_from_sums(metric, weights @ image_values(r, a, metric), weights.sum(axis=1))
        for r, a in zip(side.records, side.per_image, strict=True)
    ]
    return np.mean(per_seed, axis=0)


def draw_weights(rng: np.random.Generator, draws: int, n: int) -> np.ndarray:
    """(draws, n): how often each image is drawn, n images with replacement per row."""
    idx = rng.integers(0, n, (draws, n)) + n * np.arange(draws)[:, None]
    return np.bincount(idx.ravel(), minlength=draws * n).reshape(draws, n).astype(np.float64)


def paired_interval(
    a: Side, b: Side, metric: str, draws: int = DRAWS, seed: int = 0
) -> tuple[float, float, float]:
    """(difference A - B on all images, interval low, interval high)."""
    n = len(a.per_image[0]["image_ids"])
    rng = np.random.default_rng(seed)
    diffs = []
    for start in range(0, draws, CHUNK):
        w = draw_weights(rng, min(CHUNK, draws - start), n)
        diffs.append(side_values(a, metric, w) - side_values(b, metric, w))
    all_images = np.ones((1, n))
    point = float(side_values(a, metric, all_images)[0] - side_values(b, metric, all_images)[0])
    tail = 100 * (1 - LEVEL) / 2
    lo, hi = np.percentile(np.concatenate(diffs), [tail, 100 - tail])
    return point, float(lo), float(hi)


def metrics_of(a: Side, b: Side) -> list[str]:
    """The metrics both sides have per-image values for, in LABELS' order."""
    need = {"gt_known_loc": "box_hit", "maxboxaccv2": "maxbox_hits", "pxap": "pixel_hist"}
    found = []
    for metric, key in need.items():
        sides = a.per_image + b.per_image
        records = a.records + b.records
        if all(key in arr for arr in sides) and all(metric in r.metrics for r in records):
            found.append(metric)
    return found


def open_side(store: Store, label: str, run_ids: list[str]) -> Side:
    records, arrays = [], []
    for run_id in run_ids:
        record = store.record(run_id)
        path = store.run_dir(run_id) / "per_image.npz"
        if record is None or not path.is_file():
            raise UserError(f"run '{run_id}': no finished run with per_image.npz in {store.root}")
        records.append(record)
        arrays.append(load(path))
    if any(r.config.get("eval_split") == "val" for r in records):
        raise UserError(f"{label}: a tuning trial (scored on val) is not a test result")
    return Side(label, records, arrays)


def check_paired(a: Side, b: Side) -> None:
    """Both sides must have scored the same test images, in the same order."""
    ids = a.per_image[0]["image_ids"]
    for side in (a, b):
        for r, arr in zip(side.records, side.per_image, strict=True):
            if not np.array_equal(arr["image_ids"], ids):
                raise UserError(
                    f"run '{r.run_id}' was scored on other images than "
                    f"'{a.records[0].run_id}': no paired comparison"
                )


def resolve(store: Store, token: str, dataset: str | None) -> Side:
    """Run ids (comma-separated), or a method name: the test runs of its latest
    tune record in the store (on ``dataset`` when given)."""
    ids = [t for t in token.split(",") if t]
    if len(ids) > 1 or (ids and store.record(ids[0]) is not None):
        return open_side(store, token, ids)
    searches = []
    for path in sorted((store.root / ".tunes").glob("*.json")):
        data = json.loads(path.read_text())
        if data.get("method") == token and dataset in (None, data.get("dataset")):
            searches.append(data)
    if not searches:
        raise UserError(
            f"{token}: neither a finished run id nor a method with a tune record in "
            f"{store.root / '.tunes'} (run `wsolbench tune {token}` first)"
        )
    latest = max(searches, key=lambda d: d["finished"])
    return open_side(store, f"{token} (tuned, {latest['search_id']})", latest["test_runs"])


def compare_rows(a: Side, b: Side, draws: int = DRAWS) -> list[dict]:
    """Per metric: each side's mean and sd over its seeds, the difference on all
    images and its interval."""
    check_paired(a, b)
    rows = []
    for metric in metrics_of(a, b):
        point, lo, hi = paired_interval(a, b, metric, draws)
        row = {"metric": LABELS[metric], "difference": point, "low": lo, "high": hi}
        for key, side in (("a", a), ("b", b)):
            values = np.array([r.metrics[metric] for r in side.records])
            sd = float(values.std(ddof=1)) if len(values) > 1 else None
            row[key] = (float(values.mean()), sd, len(values))
        rows.append(row)
    return rows


def render_comparison(a: Side, b: Side, rows: list[dict], draws: int) -> str:
    def side(v: tuple) -> str:
        mean, sd, n = v
        return f"{mean:.2f} ± {sd:.2f} ({n})" if sd is not None else f"{mean:.2f} ({n} seed)"

    lines = [
        f"A: {a.label}",
        f"B: {b.label}",
        "",
        f"| metric | A mean ± sd (seeds) | B mean ± sd (seeds) | A − B | {LEVEL:.0%} interval |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        interval = f"[{r['low']:+.2f}, {r['high']:+.2f}]"
        lines.append(
            f"| {r['metric']} | {side(r['a'])} | {side(r['b'])} | {r['difference']:+.2f} | "
            f"{interval} |"
        )
    n = len(a.per_image[0]["image_ids"])
    lines += ["", f"Paired bootstrap: {draws} draws of the {n} test images, the same draws for "
              "both sides, each side's value the mean over its seeds."]  # fmt: skip
    for r in rows:
        if r["low"] <= 0 <= r["high"]:
            lines.append(
                f"{r['metric']}: the interval contains 0: these runs do not show a difference."
            )
        else:
            better = "A" if r["difference"] > 0 else "B"
            lines.append(f"{r['metric']}: {better} is higher; the interval excludes 0.")
    return "\n".join(lines)
