"""Streaming metric accumulators: ``update`` per image, ``merge`` across workers or
jobs, ``result`` at the end. Memory does not grow with the number of images."""

from __future__ import annotations

import copy

import numpy as np

from wsolbench.evaluation.boxes import BENCHMARK_THRESHOLDS, THRESHOLDS, box_iou, normalize_authors
from wsolbench.evaluation.componenttree import best_contour_iou, largest_component_boxes

IOU_LEVELS = (0.3, 0.5, 0.7)


class Accumulator:
    """Counters held as numpy arrays in ``self.state``; merging adds them."""

    state: dict[str, np.ndarray]

    def merge(self, other: Accumulator) -> None:
        for k in self.state:
            self.state[k] = self.state[k] + other.state[k]

    def empty_copy(self) -> Accumulator:
        """The same accumulator (thresholds, boxes) with nothing counted yet."""
        new = copy.copy(self)
        new.state = {k: np.zeros_like(v) for k, v in self.state.items()}
        return new


class Classification(Accumulator):
    def __init__(self) -> None:
        self.state = {"n": np.zeros(()), "top1": np.zeros(()), "top5": np.zeros(())}

    def update(self, logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Add a batch; return per-image top-1 / top-5 correctness."""
        top5 = np.argsort(-logits, axis=1)[:, :5]
        c1 = top5[:, 0] == labels
        c5 = (top5 == labels[:, None]).any(axis=1)
        self.state["n"] += len(labels)
        self.state["top1"] += c1.sum()
        self.state["top5"] += c5.sum()
        return c1, c5

    def result(self) -> dict[str, float]:
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

    def update(self, score_map: np.ndarray, gt: np.ndarray, c1: bool, c5: bool) -> np.ndarray:
        """Add one image (map on the GT boxes' frame); return best IoU per threshold."""
        boxes = largest_component_boxes(normalize_authors(score_map), self.thresholds)
        best = box_iou(boxes, gt).max(axis=1)
        ok = best >= 0.5
        self.state["n"] += 1
        self.state["iou"] += best[None, :] >= np.array(IOU_LEVELS)[:, None]
        self.state["top1"] += ok & c1
        self.state["top5"] += ok & c5
        return best

    def curves(self) -> dict[str, np.ndarray]:
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

    def __init__(self, thresholds: np.ndarray = BENCHMARK_THRESHOLDS) -> None:
        self.thresholds = thresholds
        self.state = {"n": np.zeros(()), "hits": np.zeros((len(IOU_LEVELS), len(thresholds)))}

    def update(self, map01: np.ndarray, gt: np.ndarray) -> None:
        best = best_contour_iou(map01, gt, self.thresholds)
        self.state["n"] += 1
        self.state["hits"] += best[None, :] >= np.array(IOU_LEVELS)[:, None]

    def result(self) -> dict[str, float]:
        acc = 100 * self.state["hits"].max(axis=1) / max(float(self.state["n"]), 1.0)
        out = {
            f"maxboxacc_iou{int(d * 100)}": float(a) for d, a in zip(IOU_LEVELS, acc, strict=True)
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

    def update(self, map01: np.ndarray, mask: np.ndarray, ignore: np.ndarray | None = None) -> None:
        keep = np.ones(mask.shape, bool) if ignore is None else ~ignore
        values = np.asarray(map01, np.float64)  # the benchmark's loader hands over float64
        self.state["fg"] += np.histogram(values[keep & mask], bins=self.edges)[0]
        self.state["bg"] += np.histogram(values[keep & ~mask], bins=self.edges)[0]

    def result(self) -> dict[str, float]:
        # From the top bin down: tp[i] = object pixels scoring >= the i-th highest
        # edge, fp likewise for background pixels; tp[0] = fp[0] = 0.
        tp = np.cumsum(self.state["fg"][::-1])
        fp = np.cumsum(self.state["bg"][::-1])
        total_fg = max(self.state["fg"].sum(), 1.0)
        # Precision where nothing is predicted is left out of the sum, as the benchmark
        # does; its recall step is 0 there anyway.
        precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=(tp + fp) > 0)
        recall = tp / total_fg
        pxap = float((precision[1:] * np.diff(recall)).sum())
        piou = float((tp / (total_fg + fp)).max())
        return {"pxap": 100 * pxap, "piou": 100 * piou}


class Polarity(Accumulator):
    """The share of maps that light the background more than the object: mean map
    value inside the object mask below the mean outside it (ignored pixels left out).
    SAT's failure mode on data its gate finds ambiguous; kept in every record that
    has masks."""

    def __init__(self) -> None:
        self.state = {"n": np.zeros(()), "flipped": np.zeros(())}

    def update(self, m: np.ndarray, mask: np.ndarray, ignore: np.ndarray | None = None) -> None:
        keep = np.ones(mask.shape, bool) if ignore is None else ~ignore
        inside, outside = m[keep & mask], m[keep & ~mask]
        if inside.size == 0 or outside.size == 0:
            return  # no object or no background: polarity is undefined
        self.state["n"] += 1
        self.state["flipped"] += float(inside.mean() < outside.mean())

    def result(self) -> dict[str, float]:
        return {"flipped_maps": 100 * float(self.state["flipped"]) / max(float(self.state["n"]), 1)}
