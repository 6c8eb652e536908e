"""``wsolbench bench metrics``: the box rules and PxAP over 1,000 maps at 224x224, ours
against the references' per-threshold procedures at both of the benchmark's grids
(``cam_curve_interval`` 0.01 and 0.001), where our time goes, and the scoring pool at
1 .. N workers; every pair of numbers checked equal before a ratio is printed."""

from __future__ import annotations

import time

import cv2
import numpy as np

from wsolbench.bench.maps import synthetic_maps
from wsolbench.evaluation import componenttree as ct
from wsolbench.evaluation import levelparts as lp
from wsolbench.evaluation import pathlevels as pl
from wsolbench.evaluation import reference
from wsolbench.evaluation.boxes import (
    THRESHOLDS,
    benchmark_thresholds,
    box_iou,
    normalize_authors,
    normalize_benchmark,
)
from wsolbench.evaluation.metrics import IOU_LEVELS, MapBatch, PixelAP
from wsolbench.evaluation.pool import MapScorer, available_cpus
from wsolbench.evaluation.scores import SplitScores

# The benchmark's procedure at 0.001 takes about 75 ms a map: a tenth of the maps
# measures it as well as all of them would.
FINE_SAMPLE = 100


def pxap_per_threshold(maps: list, masks: list, thresholds: np.ndarray | None = None) -> dict:
    """Reference PxAP / pIoU by the benchmark's definition: for each cut from 2.0 and
    1.0 down through the thresholds, count the object and background pixels at or
    above it; precision is 0 where nothing is predicted; PxAP = sum of
    precision[1:] * diff(recall), so the step from the first cut (2.0: nothing) to
    the second (1.0) counts."""
    thresholds = benchmark_thresholds() if thresholds is None else thresholds
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


def _hits(best_iou, m: np.ndarray, box: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """(levels, T) hits at IoU 0.3 / 0.5 / 0.7 of one map, ``best_iou(map, gt, t)``."""
    return best_iou(m, box[None], thresholds)[None, :] >= np.array(IOU_LEVELS)[:, None]


def _largest_iou(fn):
    """The authors' rule as a best-IoU function (one box per threshold)."""
    return lambda m, gt, t: box_iou(fn(normalize_authors(m), t), gt).max(axis=1)


# Maps per timed block: each procedure scores a block in turn, so the VM's drift (a
# third from one minute to the next) falls on all of them alike.
BLOCK = 10


def _side_by_side(procs: dict, maps: list, boxes: np.ndarray) -> dict:
    """Every procedure ``name: (best_iou, thresholds, every)`` timed block by block in
    turn (the order rotating), on every ``every``-th map; per name the seconds a map
    and the hits of each map it scored."""
    spent = {k: 0.0 for k in procs}
    hits: dict = {k: {} for k in procs}
    names = list(procs)
    for b, lo in enumerate(range(0, len(maps), BLOCK)):
        for name in names[b % len(names) :] + names[: b % len(names)]:
            fn, thresholds, every = procs[name]
            todo = [i for i in range(lo, min(lo + BLOCK, len(maps))) if i % every == 0]
            t0 = time.perf_counter()
            got = [_hits(fn, maps[i], boxes[i], thresholds) for i in todo]
            spent[name] += time.perf_counter() - t0
            hits[name].update(zip(todo, got, strict=True))
    return {k: {"s": spent[k] / len(hits[k]), "hits": hits[k]} for k in procs}


def _check_pair(rule: str, ref: dict, ours: dict) -> np.ndarray:
    """The summed hits of the maps the reference scored, equal to ours on them."""
    ref_hits = sum(ref["hits"].values())
    if not np.array_equal(ref_hits, sum(ours["hits"][i] for i in ref["hits"])):
        raise RuntimeError(f"{rule}: hit counts differ from the per-threshold cv2 procedure")
    return ref_hits


def _box_procedures(n: int) -> dict:
    """Ours and the references' per-threshold procedures, for ``_side_by_side``: MaxBoxAccV2's
    rule at 0.01 and 0.001 (the loop at 0.001 on every ``n // FINE_SAMPLE``-th map), the
    authors' rule at its 100 thresholds."""
    coarse, fine = benchmark_thresholds(0.01), benchmark_thresholds(0.001)
    every = max(1, n // FINE_SAMPLE)
    return {
        "ref01": (reference.best_contour_iou, coarse, 1),
        "ours01": (ct.best_contour_iou, coarse, 1),
        "ref001": (reference.best_contour_iou, fine, every),
        "ours001": (ct.best_contour_iou, fine, 1),
        "ref_largest": (_largest_iou(reference.largest_component_boxes), THRESHOLDS, 1),
        "ours_largest": (_largest_iou(ct.largest_component_boxes), THRESHOLDS, 1),
    }


def _box_rows(maps: list, boxes: np.ndarray) -> list[tuple]:
    """The box rules' rows, every procedure timed side by side."""
    ct.warm_up()  # compiled code loads (or compiles) on first use: not timed
    n = len(maps)
    t = _side_by_side(_box_procedures(n), maps, boxes)
    hits01 = _check_pair("MaxBoxAccV2 at 0.01", t["ref01"], t["ours01"])
    _check_pair("MaxBoxAccV2 at 0.001", t["ref001"], t["ours001"])
    _check_pair("GT-known boxes", t["ref_largest"], t["ours_largest"])
    ms = {k: f"{v['s'] * 1e3:.2f} ms/map" for k, v in t.items()}
    r = {k: v["s"] for k, v in t.items()}
    acc = 100 * hits01.max(axis=1).mean() / n
    cv = f"cv2 {cv2.__version__}"  # its findContours took 1.9x as long in 4.12 as in 5.0
    return [
        (
            f"MaxBoxAccV2 boxes (every RETR_TREE contour), {n} maps 224x224, interval 0.01",
            f"benchmark's per-threshold loop ({cv}) {ms['ref01']}; ours 1 core {ms['ours01']}",
            f"{r['ref01'] / r['ours01']:.1f}x per core (target 8x)",
            f"equal hit counts at every threshold (MaxBoxAccV2 {acc:.2f})",
        ),
        (
            f"MaxBoxAccV2 boxes, interval 0.001 (1,000 thresholds; the loop on "
            f"{len(t['ref001']['hits'])} maps)",
            f"benchmark's loop ({cv}) {ms['ref001']}; ours {ms['ours001']}",
            f"{r['ref001'] / r['ours001']:.1f}x per core (target 50x); ours 0.001 / 0.01 "
            f"{r['ours001'] / r['ours01']:.2f} (target <= 1.5)",
            f"loop 0.001 / 0.01 {r['ref001'] / r['ref01']:.1f}; equal hit counts",
        ),
        (
            f"GT-known boxes (largest component), {n} maps, 100 thresholds",
            f"cv2 per threshold {ms['ref_largest']}; ours {ms['ours_largest']}",
            f"{r['ref_largest'] / r['ours_largest']:.1f}x per core",
            "equal hit counts at every threshold",
        ),
        _profile_row(maps, boxes, benchmark_thresholds(0.01)),
    ]


def _profile_inputs(m01: np.ndarray, gt: np.ndarray, thresholds: np.ndarray) -> dict:
    """One map's inputs to every stage of ``_contour_best``, made as it makes them."""
    x: dict = {"m01": m01, "gt": gt}
    x["band"], x["m"], _ = ct._benchmark_bands(m01, thresholds)
    band, m = x["band"], x["m"]
    x["to_peak"], x["bound"] = pl._path_levels(band, m, True), pl._path_levels(band, m, False, 1)
    x["outer_bits"], x["bound_bits"] = (
        lp._differ_bits(x["to_peak"], band),
        lp._differ_bits(band, x["bound"]),
    )
    x["peak"] = ct._peak_box(x["to_peak"], m)
    x["outer"] = lp._outer_wanted(
        lp._parts(x["to_peak"], band, x["outer_bits"], True), gt, x["peak"], *band.shape
    )
    x["lowest"] = int(np.argmax(x["outer"])) if x["outer"].any() else m
    x["runs"] = ct._runs_by_band(band, m + 1, x["outer_bits"], x["lowest"] + 1, 255)
    best, cover = ct._contour_pass(x["to_peak"], x["runs"], gt, False, x["outer"], x["peak"])
    x["best"], x["cover"] = best, cover
    x["holes"] = lp._holes_wanted(band, x["bound"], x["bound_bits"], gt, best, cover > best)
    return x


def _hole_pass(x: dict) -> None:
    """Where the bound leaves a hole level: the border's levels in full, and the holes."""
    if x["holes"].any():
        ct._holes_best(x["band"], x["m"], x["gt"], x["best"], x["holes"])


# Each stage of ``_contour_best`` on one map's inputs (``_profile_inputs``).
STAGES = {
    "bands": lambda x, t: ct._benchmark_bands(x["m01"], t),
    "path levels to the peak": lambda x, t: pl._path_levels(x["band"], x["m"], True),
    "a bound on those to the border (one pair of sweeps)": lambda x, t: pl._path_levels(
        x["band"], x["m"], False, 1
    ),
    "bitsets": lambda x, t: (
        lp._differ_bits(x["to_peak"], x["band"]),
        lp._differ_bits(x["band"], x["bound"]),
    ),
    "peak boxes and the parts' bounds": lambda x, t: (
        ct._peak_box(x["to_peak"], x["m"]),
        lp._outer_wanted(
            lp._parts(x["to_peak"], x["band"], x["outer_bits"], True),
            x["gt"],
            x["peak"],
            *x["band"].shape,
        ),
        lp._holes_wanted(
            x["band"], x["bound"], x["bound_bits"], x["gt"], x["best"], x["cover"] > x["best"]
        ),
    ),
    "outer runs": lambda x, t: ct._runs_by_band(
        x["band"], x["m"] + 1, x["outer_bits"], x["lowest"] + 1, 255
    ),
    "outer pass": lambda x, t: ct._contour_pass(
        x["to_peak"], x["runs"], x["gt"], False, x["outer"], x["peak"]
    ),
    "holes (full border levels, hole pass) where the bound leaves any": lambda x, t: _hole_pass(x),
}


def _profile_row(maps: list, boxes: np.ndarray, thresholds: np.ndarray) -> tuple:
    """Where ours spends a map at 0.01: each stage of ``_contour_best`` timed alone."""
    xs = [
        _profile_inputs(m, np.asarray(b, np.float64)[None], thresholds)
        for m, b in zip(maps, boxes, strict=True)
    ]
    spent = {}
    for name, fn in STAGES.items():
        t0 = time.perf_counter()
        for x in xs:
            fn(x, thresholds)
        spent[name] = (time.perf_counter() - t0) / len(maps) * 1e3
    t0 = time.perf_counter()
    for x in xs:
        ct._contour_best(x["m01"], x["gt"], thresholds)
    whole = (time.perf_counter() - t0) / len(maps) * 1e3
    added = np.mean([x["runs"][0].size for x in xs])
    every = np.mean([ct._runs_by_band(x["band"], x["m"] + 1, None, 0, 255)[0].size for x in xs])
    holes = 100 * np.mean([x["holes"].any() for x in xs])  # the bound leaves a hole level
    return (
        "where ours spends a map (0.01)",
        ", ".join(f"{k} {v:.3f} ms" for k, v in spent.items())
        + f"; {whole:.3f} ms in sequence (the rest: calls between the compiled steps)",
        f"the outer union-find adds {added:,.0f} runs a map of {every:,.0f}; the border's "
        f"levels in full on {holes:.0f} % of the maps",
        "only pixels off the peak's component, down to the lowest level where a part of "
        "them can beat the peak's box; holes only where a part of the hole pixels can",
    )


def _pool_seconds(maps: list, boxes: np.ndarray, workers: int) -> tuple[SplitScores, float]:
    """Both box rules through the evaluator's pool: workers started and their kernels
    loaded before the timer, the maps made already."""
    scores = SplitScores(cls=None)
    scorer = MapScorer(scores, workers)
    scorer.warm()
    # the batches are stacked before the timer too: a model hands them over stacked
    batches = [
        MapBatch(np.stack(maps[i : i + 50]), [b[None] for b in boxes[i : i + 50]])
        for i in range(0, len(maps), 50)
    ]
    t0 = time.perf_counter()
    for batch in batches:
        scorer.add(batch)
    scorer.drain()
    seconds = time.perf_counter() - t0
    scorer.close()  # the workers' exit is not scoring time
    return scores, seconds


def _pool_rows(maps: list, boxes: np.ndarray) -> list[tuple]:
    """Speed-up of the scoring pool from 1 to every CPU, against one worker."""
    counts = sorted({1, *(2**k for k in range(1, 5)), available_cpus()} - {0})
    counts = [c for c in counts if c <= available_cpus()]
    times: dict = {w: float("inf") for w in counts}
    first = None
    # best of 3 rounds, each round every worker count in turn: this VM's speed drifts
    # from one minute to the next, and so falls on every count alike
    for _ in range(3):
        for workers in counts:
            scores, seconds = _pool_seconds(maps, boxes, workers)
            times[workers] = min(times[workers], seconds)
            hits = (scores.maxbox.state["hits"], scores.box.state["iou"])
            first = first or hits
            if not all(np.array_equal(a, b) for a, b in zip(first, hits, strict=True)):
                raise RuntimeError(f"{workers} workers counted other hits than one")
    top = max(counts)
    return [
        (
            f"scoring pool, both box rules, {len(maps)} maps, 1..{top} workers",
            ", ".join(f"{w}: {t:.2f} s" for w, t in times.items()),
            f"{times[1] / times[top]:.2f}x from {top} workers (target 1.8x on 2 cores)",
            "best of 3 rounds, counts in turn; no worker start, maps made first; equal counts",
        )
    ]


def _pxap_row(maps: list, masks: np.ndarray) -> tuple:
    PixelAP().update(MapBatch.one(maps[0], mask=masks[0] == 1))  # compiled on first use
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
    return (
        f"PxAP/pIoU, {len(maps)} maps 224x224, 100 thresholds",
        f"{t_ours:.2f} s (per-threshold reference {t_ref:.2f} s)",
        f"{t_ref / t_ours:.1f}x (target 5x)",
        f"PxAP {got['pxap']:.4f}, max abs difference {diff:.1e}",
    )


def metrics(images: int = 1000, **_) -> list[tuple]:
    n = min(images, 1000)
    maps, boxes, masks = (np.concatenate(a) for a in zip(*synthetic_maps(n, seed=1), strict=True))
    # in [0, 1] and float32, as the evaluator reads exchanged maps
    maps = [normalize_benchmark(m).astype(np.float32) for m in maps]
    return _box_rows(maps, boxes) + _pool_rows(maps, boxes) + [_pxap_row(maps, masks)]
