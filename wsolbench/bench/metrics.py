"""``wsolbench bench metrics``: both box rules and PxAP over 1,000 maps at 224x224 with
100 thresholds: the references' per-threshold procedures, ours on one core and ours
on every core, side by side, the numbers checked equal."""

from __future__ import annotations

import time

import numpy as np

from wsolbench.bench.maps import synthetic_maps
from wsolbench.evaluation import reference
from wsolbench.evaluation.boxes import (
    BENCHMARK_THRESHOLDS,
    THRESHOLDS,
    box_iou,
    normalize_authors,
    normalize_benchmark,
)
from wsolbench.evaluation.componenttree import best_contour_iou, largest_component_boxes
from wsolbench.evaluation.metrics import IOU_LEVELS, MapBatch, PixelAP
from wsolbench.evaluation.pool import MapScorer, available_cpus
from wsolbench.evaluation.scores import SplitScores


def pxap_per_threshold(
    maps: list, masks: list, thresholds: np.ndarray = BENCHMARK_THRESHOLDS
) -> dict:
    """Reference PxAP / pIoU by the benchmark's definition: for each cut from 2.0 and
    1.0 down through the thresholds, count the object and background pixels at or
    above it; precision is 0 where nothing is predicted; PxAP = sum of
    precision[1:] * diff(recall), so the step from the first cut (2.0: nothing) to
    the second (1.0) counts."""
    cuts = np.append(thresholds, [1.0, 2.0])[::-1]
    tp, fp = np.zeros(len(cuts)), np.zeros(len(cuts))
    total_fg = 0
    for m, mask in zip(maps, masks, strict=True):
        fg, bg = m[mask == 1].astype(np.float64), m[mask == 0].astype(np.float64)
        total_fg += fg.size
        for i, t in enumerate(cuts):
            tp[i] += (fg >= t).sum()
            fp[i] += (bg >= t).sum()
    precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=(tp + fp) > 0)
    recall = tp / max(total_fg, 1)
    return {
        "pxap": 100 * float((precision[1:] * np.diff(recall)).sum()),
        "piou": 100 * float((tp / (total_fg + fp)).max()),
    }


def _curves(maps: list, boxes: np.ndarray, rule: str, fn) -> tuple[np.ndarray, float]:
    """Per-threshold hit counts at IoU 0.3 / 0.5 / 0.7 over all maps with one rule's
    box function, and the seconds it took."""
    levels = np.array(IOU_LEVELS)[:, None]
    hits = np.zeros((len(IOU_LEVELS), len(THRESHOLDS)))
    t0 = time.perf_counter()
    for m, b in zip(maps, boxes, strict=True):
        if rule == "benchmark":
            best = fn(m, b[None], BENCHMARK_THRESHOLDS)
        else:
            best = box_iou(fn(normalize_authors(m), THRESHOLDS), b[None]).max(axis=1)
        hits += best[None, :] >= levels
    return hits, time.perf_counter() - t0


def _all_cores(maps: list, boxes: np.ndarray, workers: int) -> tuple[SplitScores, float]:
    """Both box rules through the evaluator's worker pool (startup included)."""
    scores = SplitScores(cls=None)
    t0 = time.perf_counter()
    scorer = MapScorer(scores, workers)
    for i in range(0, len(maps), 100):
        chunk = np.stack(maps[i : i + 100])
        scorer.add(MapBatch(chunk, [b[None] for b in boxes[i : i + 100]]))
    scorer.close()
    return scores, time.perf_counter() - t0


def _box_rows(maps: list, boxes: np.ndarray) -> list[tuple]:
    n, workers = len(maps), available_cpus()
    # Compiled code loads (or compiles) on first use: do that before timing.
    best_contour_iou(maps[0], boxes[:1], BENCHMARK_THRESHOLDS)
    largest_component_boxes(normalize_authors(maps[0]), THRESHOLDS)
    pooled, t_pool = _all_cores(maps, boxes, workers)
    rows = []
    for rule, ref_fn, our_fn, pool_hits in (
        ("benchmark", reference.best_contour_iou, best_contour_iou, pooled.maxbox.state["hits"]),
        (
            "authors",
            reference.largest_component_boxes,
            largest_component_boxes,
            pooled.box.state["iou"],
        ),
    ):
        ref_hits, t_ref = _curves(maps, boxes, rule, ref_fn)
        our_hits, t_one = _curves(maps, boxes, rule, our_fn)
        if not (np.array_equal(ref_hits, our_hits) and np.array_equal(ref_hits, pool_hits)):
            raise RuntimeError(f"{rule} rule: hit counts differ from the per-threshold cv2 one")
        name = (
            "MaxBoxAccV2 boxes (every RETR_TREE contour)"
            if rule == "benchmark"
            else "GT-known boxes (largest component)"
        )
        # MaxBoxAccV2, or GT-known at the best threshold
        best = ref_hits.max(axis=1) if rule == "benchmark" else ref_hits[1:2].max(axis=1)
        value = 100 * best.mean() / n
        rows.append(
            (
                f"{name}, {n} maps 224x224, 100 thresholds",
                f"cv2 per threshold {t_ref:.2f} s; ours 1 core {t_one:.2f} s",
                f"{t_ref / t_one:.1f}x per core (target 5x)",
                f"equal hit counts at every threshold ({value:.2f}); cv2 {t_ref / n * 1e3:.2f} "
                f"ms/map, ours {t_one / n * 1e3:.2f} ms/map",
                t_one,
                t_ref,
            )
        )
    return [r[:4] for r in rows] + [_all_cores_row(rows, n, workers, t_pool)]


def _all_cores_row(rows: list[tuple], n: int, workers: int, t_pool: float) -> tuple:
    """Both rules through the pool, against their one-core and cv2 times."""
    t_ref, t_one = sum(r[-1] for r in rows), sum(r[-2] for r in rows)
    return (
        f"both box rules, {n} maps, all {workers} cores",
        f"{t_pool:.2f} s (worker start included) vs {t_one:.2f} s on 1 core",
        f"{t_ref / t_pool:.1f}x over cv2 per threshold in all; "
        f"{t_one / t_pool:.2f}x from {workers} cores (linear: {workers}x)",
        "hit counts equal to one core's and to cv2's",
    )


def metrics(images: int = 1000, **_) -> list[tuple]:

    n = min(images, 1000)
    maps, boxes, masks = (np.concatenate(a) for a in zip(*synthetic_maps(n, seed=1), strict=True))
    maps = [normalize_benchmark(m) for m in maps]  # in [0, 1], as the evaluator scores them
    rows = _box_rows(maps, boxes)
    t0 = time.perf_counter()
    ours = PixelAP()
    for m, mask in zip(maps, masks, strict=True):
        ours.update(MapBatch.one(m, mask=mask == 1))
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = pxap_per_threshold(maps, list(masks))
    t_ref = time.perf_counter() - t0
    got = ours.compute()
    diff = max(abs(got[k] - ref[k]) for k in ref)
    if diff > 1e-4:
        raise RuntimeError(f"PxAP differs from the per-threshold reference by {diff:.2e}")
    return rows + [
        (
            f"PxAP/pIoU, {n} maps 224x224, 100 thresholds",
            f"{t_ours:.2f} s (per-threshold reference {t_ref:.2f} s)",
            f"{t_ref / t_ours:.1f}x (target 5x)",
            f"PxAP {got['pxap']:.4f}, max abs difference {diff:.1e}",
        ),
    ]
