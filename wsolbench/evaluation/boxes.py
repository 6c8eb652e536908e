"""Score map -> one box per threshold, under the two protocols of the field.

Boxes are ``x0, y0, x1, y1`` in pixels; IoU uses the +1 convention
(width = x1 - x0 + 1), as both the SAT authors' and the WSOL benchmark's code do.
"""

from __future__ import annotations

import cv2
import numpy as np

# The SAT authors' box thresholds (a sub-range of these in their code), compared with
# ``m > t`` on float maps.
THRESHOLDS = np.round(np.arange(0.0, 1.0, 0.01), 2)
# The WSOL benchmark's ``np.arange(0, 1, cam_curve_interval)`` left unrounded, as its
# evaluator uses it: 0.35, 0.57, 0.70 and 0.82 sit a hair off, which moves
# ``int(t * max)`` for some uint8 maxima (e.g. int(0.7000000000000001 * 90) = 63, not
# 62) and decides which bin a map value of exactly 0.7 falls in.
BENCHMARK_THRESHOLDS = np.arange(0.0, 1.0, 0.01)


def normalize_authors(m: np.ndarray) -> np.ndarray:
    """SAT authors: (m - min) / (max - min + 1e-5)."""
    return (m - m.min()) / (m.max() - m.min() + 1e-5)


def normalize_benchmark(m: np.ndarray) -> np.ndarray:
    """WSOL benchmark: min-max to [0, 1]; constant or NaN maps become all zeros."""
    lo, hi = m.min(), m.max()
    if not np.isfinite(lo) or not np.isfinite(hi) or hi == lo:
        return np.zeros_like(m)
    return (m - lo) / (hi - lo)


def _roi(rowmax: np.ndarray, colmax: np.ndarray, t: float) -> tuple[int, ...] | None:
    """Rows and columns (half-open) that hold every pixel above ``t``, or None when
    there is none. Labelling this window gives the same components as the whole
    image, cheaper at high thresholds; one component's box is the window itself."""
    rows, cols = np.flatnonzero(rowmax > t), np.flatnonzero(colmax > t)
    if rows.size == 0:
        return None
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


def _first_largest(fg: np.ndarray) -> tuple[int, int, int, int]:
    _, _, stats, _ = cv2.connectedComponentsWithStats(fg.astype(np.uint8), None, 8)
    x, y, bw, bh = stats[1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA])), :4]
    return x, y, x + bw, y + bh


def largest_component_boxes(m: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """SAT authors' rule: foreground = m > t; largest 8-connected component by pixel
    count; box (min col, min row, max col + 1, max row + 1); no foreground -> the
    whole frame (0, 0, W, H). Returns (T, 4)."""
    h, w = m.shape
    out = np.tile(np.array([0, 0, w, h], np.int64), (len(thresholds), 1))
    rowmax, colmax = m.max(axis=1), m.max(axis=0)
    for i, t in enumerate(thresholds):
        roi = _roi(rowmax, colmax, t)
        if roi is None:
            break  # thresholds ascend: every later one is empty too
        y0, y1, x0, x1 = roi
        n, labels = cv2.connectedComponents((m[y0:y1, x0:x1] > t).astype(np.uint8), None, 8)
        if n > 2:  # several components: find the largest and its extent
            sizes = np.bincount(labels.ravel(), minlength=n)[1:]
            if (sizes == sizes.max()).sum() > 1:
                out[i] = _first_largest(m > t)  # a tie: break it as whole-image labels do
                continue
            ys, xs = np.nonzero(labels == 1 + int(np.argmax(sizes)))
            y0, y1, x0, x1 = y0 + ys.min(), y0 + ys.max() + 1, x0 + xs.min(), x0 + xs.max() + 1
        out[i] = (x0, y0, x1, y1)  # one component: its box is the window itself
    return out


def contour_boxes(m01: np.ndarray, thresholds: np.ndarray) -> list[np.ndarray]:
    """WSOL benchmark's rule for MaxBoxAccV2 (``multi_contour_eval=True``): uint8 map
    ``(m * 255)`` (from float64, as its loader hands it over), ``cv2.threshold`` at
    ``int(t * max)`` (strictly above), contours with RETR_TREE (outer and hole
    borders), and EVERY contour's ``cv2.boundingRect`` -> (x, y, x + w, y + h) with
    x1, y1 clipped to W - 1, H - 1; no contour -> one box (0, 0, 0, 0). Returns one
    (n_t, 4) array per threshold."""
    h, w = m01.shape
    gray = (np.asarray(m01, np.float64) * 255).astype(np.uint8)
    top = int(gray.max())
    out = []
    for t in thresholds:
        _, binary = cv2.threshold(gray, int(t * top), 255, cv2.THRESH_BINARY)
        contours = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
        rects = np.array([cv2.boundingRect(c) for c in contours], np.int64).reshape(-1, 4)
        boxes = np.zeros((max(len(rects), 1), 4), np.int64)
        if len(rects):
            boxes[:, :2] = rects[:, :2]
            boxes[:, 2] = np.minimum(rects[:, 0] + rects[:, 2], w - 1)
            boxes[:, 3] = np.minimum(rects[:, 1] + rects[:, 3], h - 1)
        out.append(boxes)
    return out


def best_contour_iou(m01: np.ndarray, gt: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """(T,) the best IoU at each threshold over every contour box and every GT box."""
    return np.array([box_iou(b, gt).max() for b in contour_boxes(m01, thresholds)])


def box_area(boxes: np.ndarray) -> np.ndarray:
    """Areas (+1 convention) of (n, 4) boxes."""
    return (boxes[..., 2] - boxes[..., 0] + 1) * (boxes[..., 3] - boxes[..., 1] + 1)


def box_iou(boxes: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """IoU (+1 convention) of each box (T, 4) with each GT box (G, 4): (T, G)."""
    b = boxes[:, None, :].astype(np.float64)
    g = gt[None, :, :].astype(np.float64)
    iw = np.minimum(b[..., 2], g[..., 2]) - np.maximum(b[..., 0], g[..., 0]) + 1
    ih = np.minimum(b[..., 3], g[..., 3]) - np.maximum(b[..., 1], g[..., 1]) + 1
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    return inter / (box_area(b) + box_area(g) - inter)
