"""Streaming metric accumulators, one protocol for all, in the spirit of torchmetrics:
``update(batch)`` with a ``MapBatch`` (returning per-image values where the metric
has them), ``merge`` across workers or jobs, ``compute`` at the end, ``reset``.
Memory does not grow with the number of images."""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from wsolbench.core.errors import UserError
from wsolbench.data.annotations import IGNORE
from wsolbench.evaluation.boxes import BENCHMARK_THRESHOLDS, THRESHOLDS, box_iou, normalize_authors
from wsolbench.evaluation.componenttree import (
    as_float_map,
    best_contour_iou,
    largest_component_boxes,
)
from wsolbench.evaluation.histogram import object_background_histograms

IOU_LEVELS = (0.3, 0.5, 0.7)


@dataclass
class MapBatch:
    """What every accumulator is updated with: maps on the evaluation frame, in
    [0, 1] (the exchange maps), and what they are scored against."""

    maps: np.ndarray  # (B, H, W)
    boxes: list[np.ndarray]  # per image (n, 4): x0, y0, x1, y1, last pixel inclusive
    masks: np.ndarray | None = None  # (B, H, W) uint8: 1 object, IGNORE neither, 0 background
    scores: np.ndarray | None = None  # (B, C) class scores; None: not classified
    labels: np.ndarray | None = None  # (B,)
    grids: np.ndarray | None = None  # (B, h, w) the maps before resizing (TS-CAM's rule)
    tscam_boxes: list[np.ndarray] | None = None  # GT boxes in TS-CAM's conversion

    def __len__(self) -> int:
        return len(self.maps)

    @functools.cached_property
    def correct(self) -> tuple[np.ndarray, np.ndarray]:
        """Top-1 and top-5 correctness per image (all False when not classified);
        worked out once per batch, for every accumulator that reads it."""
        if self.scores is None:
            no = np.zeros(len(self), bool)
            return no, no
        top5 = np.argsort(-self.scores, axis=1)[:, :5]
        return top5[:, 0] == self.labels, (top5 == self.labels[:, None]).any(axis=1)

    @classmethod
    def one(
        cls,
        m: np.ndarray,
        boxes: Any = (),
        mask: np.ndarray | None = None,
        ignore: np.ndarray | None = None,
        scores: np.ndarray | None = None,
        label: int | None = None,
    ) -> MapBatch:
        """A batch of one image; ``mask`` / ``ignore`` as booleans."""
        masks = None
        if mask is not None:
            masks = np.where(mask, 1, 0).astype(np.uint8)
            if ignore is not None:
                masks[ignore & ~mask] = IGNORE
            masks = masks[None]
        return cls(
            maps=np.asarray(m)[None],
            boxes=[np.asarray(boxes, np.float64).reshape(-1, 4)],
            masks=masks,
            scores=None if scores is None else np.asarray(scores)[None],
            labels=None if label is None else np.array([label]),
        )


def map_problem(m: np.ndarray) -> str | None:
    """What is wrong with a score map for the benchmark's evaluator (2-D numbers in
    [0, 1], finite), or None. Each caller names the map its own way."""
    if m.ndim != 2 or m.size == 0:
        return f"score map must be 2-D, got shape {m.shape}"
    if m.dtype == bool or not np.issubdtype(m.dtype, np.number):
        return f"score map must hold numbers in [0, 1], got dtype {m.dtype}"
    if not np.isfinite(m).all():
        return "score map holds NaN or infinite values"
    if m.min() < 0 or m.max() > 1:
        return f"values must lie in [0, 1], got {m.min():.4g}..{m.max():.4g}"
    return None


class Accumulator:
    """Counters held as numpy arrays in ``self.state``; merging adds them."""

    state: dict[str, np.ndarray]

    def update(self, batch: MapBatch) -> np.ndarray | None:
        """Count a batch; per-image values where the metric has them, else None."""
        raise NotImplementedError

    def compute(self) -> dict[str, Any]:
        raise NotImplementedError

    def merge(self, other: Accumulator) -> None:
        for k in self.state:
            self.state[k] = self.state[k] + other.state[k]

    def reset(self) -> None:
        self.state = {k: np.zeros_like(v) for k, v in self.state.items()}

    def empty_copy(self) -> Accumulator:
        """The same accumulator (thresholds, boxes) with nothing counted yet."""
        new = copy.copy(self)
        new.reset()
        return new


class Classification(Accumulator):
    def __init__(self) -> None:
        self.state = {"n": np.zeros(()), "top1": np.zeros(()), "top5": np.zeros(())}

    def update(self, batch: MapBatch) -> None:
        if batch.scores is None:
            return
        c1, c5 = batch.correct
        self.state["n"] += len(batch)
        self.state["top1"] += c1.sum()
        self.state["top5"] += c5.sum()

    def compute(self) -> dict[str, float]:
        n = max(float(self.state["n"]), 1.0)
        return {"top1_cls": 100 * self.state["top1"] / n, "top5_cls": 100 * self.state["top5"] / n}


class BoxAccuracy(Accumulator):
    """SAT authors' protocol, at every threshold: GT-known / Top-1 / Top-5 Loc and
    the share of images with best IoU >= 0.3 / 0.5 / 0.7."""

    def __init__(self, thresholds: np.ndarray = THRESHOLDS) -> None:
        self.thresholds = thresholds
        t = len(thresholds)
        self.state = {
            "n": np.zeros(()),
            "iou": np.zeros((len(IOU_LEVELS), t)),
            "top1": np.zeros(t),
            "top5": np.zeros(t),
        }

    def update(self, batch: MapBatch) -> np.ndarray:
        """Returns each image's best IoU per threshold, (B, thresholds)."""
        c1, c5 = batch.correct
        best = np.zeros((len(batch), len(self.thresholds)))
        for i, gt in enumerate(batch.boxes):
            boxes = largest_component_boxes(normalize_authors(batch.maps[i]), self.thresholds)
            best[i] = box_iou(boxes, gt).max(axis=1)
            ok = best[i] >= 0.5
            self.state["iou"] += best[i][None, :] >= np.array(IOU_LEVELS)[:, None]
            self.state["top1"] += ok & c1[i]
            self.state["top5"] += ok & c5[i]
        self.state["n"] += len(batch)
        return best

    def compute(self) -> dict[str, np.ndarray]:
        """Curves over the thresholds: GT-known, Top-1 / Top-5 Loc, IoU levels."""
        n = max(float(self.state["n"]), 1.0)
        return {
            "gt_known": 100 * self.state["iou"][IOU_LEVELS.index(0.5)] / n,
            "top1_loc": 100 * self.state["top1"] / n,
            "top5_loc": 100 * self.state["top5"] / n,
            **{
                f"iou{int(d * 100)}": 100 * self.state["iou"][i] / n
                for i, d in enumerate(IOU_LEVELS)
            },
        }


class MaxBoxAccV2(Accumulator):
    """WSOL benchmark's MaxBoxAccV2: a box from every contour at every threshold
    (``multi_contour_eval``), the best threshold per IoU level 0.3 / 0.5 / 0.7
    (``multi_iou_eval``), then their mean. Maps are scored as given (in [0, 1])."""

    def __init__(
        self, thresholds: np.ndarray = BENCHMARK_THRESHOLDS, levels: tuple = IOU_LEVELS
    ) -> None:
        self.thresholds, self.levels = thresholds, tuple(levels)
        self.state = {"n": np.zeros(()), "hits": np.zeros((len(self.levels), len(thresholds)))}

    def update(self, batch: MapBatch) -> np.ndarray:
        """Returns each image's hits, (B, IoU levels, thresholds) booleans."""
        hits = np.zeros((len(batch), len(self.levels), len(self.thresholds)), bool)
        for i, (m, gt) in enumerate(zip(batch.maps, batch.boxes, strict=True)):
            best = best_contour_iou(m, gt, self.thresholds)
            hits[i] = best[None, :] >= np.array(self.levels)[:, None]
        self.state["hits"] += hits.sum(axis=0)
        self.state["n"] += len(batch)
        return hits

    def compute(self) -> dict[str, float]:
        acc = level_accuracies(self.state["hits"], max(float(self.state["n"]), 1.0))
        out = {
            f"maxboxacc_iou{round(d * 100)}": float(a)
            for d, a in zip(self.levels, acc, strict=True)
        }
        out["maxboxaccv2"] = float(acc.mean())
        return out


class PixelAP(Accumulator):
    """PxAP (WSOL benchmark) and pIoU from histograms of map values at object and
    background pixels (ignored pixels excluded). Bin right edges are the thresholds
    followed by 1.0, 2.0, 3.0, as the benchmark's: a value of exactly 1.0 has its own
    bin [1, 2) and the empty top bin [2, 3] starts the curve at recall 0, so the
    step made by the highest-scoring pixels counts."""

    def __init__(self, thresholds: np.ndarray = BENCHMARK_THRESHOLDS) -> None:
        self.edges = np.append(thresholds, [1.0, 2.0, 3.0])
        bins = len(self.edges) - 1
        self.state = {"fg": np.zeros(bins), "bg": np.zeros(bins)}

    def update(self, batch: MapBatch) -> np.ndarray:
        """Returns each image's histograms, (B, 2, bins): object, background."""
        hist = np.zeros((len(batch), 2, len(self.edges) - 1), np.int64)
        for i, (m, mask) in enumerate(zip(batch.maps, batch.masks, strict=True)):
            # compared in float64, as the benchmark's loader hands the maps over
            values, labels = as_float_map(m), np.asarray(mask)
            hist[i] = object_background_histograms(values, labels, self.edges, IGNORE)
        self.state["fg"] += hist[:, 0].sum(axis=0)
        self.state["bg"] += hist[:, 1].sum(axis=0)
        return hist

    def require_object_pixels(self) -> None:
        """PxAP and pIoU are undefined without one object pixel; the benchmark refuses
        such a split too ("No positive ground truth")."""
        if self.state["fg"].sum() == 0:
            raise UserError("PxAP: no object pixel in the masks scored; PxAP, pIoU are undefined")

    def compute(self) -> dict[str, float]:
        pxap, piou = pxap_and_piou(self.state["fg"], self.state["bg"])
        return {"pxap": float(pxap), "piou": float(piou)}


class Polarity(Accumulator):
    """The share of maps that light the background more than the object: mean map
    value inside the object mask below the mean outside it (ignored pixels left out).
    SAT's failure mode on data its gate finds ambiguous; kept in every record that
    has masks."""

    def __init__(self) -> None:
        self.state = {"n": np.zeros(()), "flipped": np.zeros(())}

    def update(self, batch: MapBatch) -> None:
        for m, mask in zip(batch.maps, batch.masks, strict=True):
            obj, bg = _object_and_background(mask)
            inside, outside = m[obj], m[bg]
            if inside.size == 0 or outside.size == 0:
                continue  # no object or no background: polarity is undefined
            self.state["n"] += 1
            self.state["flipped"] += float(inside.mean() < outside.mean())

    def compute(self) -> dict[str, float]:
        return {"flipped_maps": 100 * float(self.state["flipped"]) / max(float(self.state["n"]), 1)}


def _object_and_background(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Object pixels (1) and background pixels (anything but object and IGNORE)."""
    obj = masks == 1
    return obj, ~obj & (masks != IGNORE)


def level_accuracies(hits: np.ndarray, n: float | np.ndarray) -> np.ndarray:
    """MaxBoxAcc per IoU level in %: hit counts (..., levels, thresholds) at their best
    threshold over ``n`` images (``n`` broadcast against the leading axes)."""
    return 100 * hits.max(axis=-1) / n


def pxap_and_piou(fg: np.ndarray, bg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PxAP and pIoU in % from object / background histograms over the bins (the last
    axis, lowest bin first; any leading axes are kept, e.g. bootstrap draws)."""
    # From the top bin down: tp[i] = object pixels scoring >= the i-th highest edge,
    # fp likewise for background pixels; tp[0] = fp[0] = 0.
    tp = np.cumsum(fg[..., ::-1], axis=-1)
    fp = np.cumsum(bg[..., ::-1], axis=-1)
    total_fg = np.maximum(fg.sum(axis=-1, keepdims=True), 1.0)
    # Precision where nothing is predicted is left out of the sum, as the benchmark
    # does; its recall step is 0 there anyway.
    precision = np.divide(tp, tp + fp, out=np.zeros(tp.shape), where=(tp + fp) > 0)
    recall = tp / total_fg
    pxap = (precision[..., 1:] * np.diff(recall, axis=-1)).sum(axis=-1)
    piou = (tp / (total_fg + fp)).max(axis=-1)
    return 100 * pxap, 100 * piou
