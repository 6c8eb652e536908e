"""The per-threshold procedures as the references' code runs them: threshold the map,
label or trace it with cv2, take boxes; 100 times per map. Not on the product path
(``componenttree`` gives the same boxes in one pass): ``wsolbench bench metrics``
times them side by side and the tests use them as the oracle."""

from __future__ import annotations

import cv2
import numpy as np

from wsolbench.evaluation.boxes import box_iou


def _roi(rowmax: np.ndarray, colmax: np.ndarray, t: float) -> tuple[int, ...] | None:
    """Rows and columns (half-open) that hold every pixel above ``t``, or None when
    there is none. Labelling this window gives the same components as the whole
    image, cheaper at high thresholds; one component's box is the window itself."""
    rows, cols = np.flatnonzero(rowmax > t), np.flatnonzero(colmax > t)
    if rows.size == 0:
        return None
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


def _first_largest(fg: np.ndarray) -> tuple[int, int, int, int]:
    _, _, stats, _ = cv2.connectedComponentsWithStats(fg.astype(np.uint8), connectivity=8)
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
    """WSOL benchmark's rule for MaxBoxAccV2 (``multi_contour_eval=True``), step for
    step as its ``compute_bboxes_from_scoremaps`` loop runs: uint8 map ``(m * 255)``
    (from float64, as its loader hands it over), per threshold ``cv2.threshold`` at
    ``int(t * max)`` (strictly above), contours with RETR_TREE (outer and hole
    borders), and EVERY contour's ``cv2.boundingRect`` -> (x, y, x + w, y + h) with
    x1, y1 clipped to W - 1, H - 1; no contour -> one box (0, 0, 0, 0). Returns one
    (n_t, 4) array per threshold."""
    h, w = m01.shape
    gray = (np.asarray(m01, np.float64) * 255).astype(np.uint8)[:, :, None]
    out = []
    for t in thresholds:
        _, binary = cv2.threshold(gray, int(t * np.max(gray)), 255, cv2.THRESH_BINARY)
        contours = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
        boxes = []
        for c in contours:
            x, y, bw, bh = cv2.boundingRect(c)
            boxes.append([x, y, min(x + bw, w - 1), min(y + bh, h - 1)])
        out.append(np.asarray(boxes if boxes else [[0, 0, 0, 0]]))
    return out


def best_contour_iou(m01: np.ndarray, gt: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """(T,) the best IoU at each threshold over every contour box and every GT box:
    every threshold's boxes in one array and one IoU call, then the best per
    threshold's slice, as the benchmark's ``BoxEvaluator.accumulate`` does (its
    per-slice Python ``max`` here one ``reduceat``), so this baseline takes no more
    than the benchmark's own time."""
    per_threshold = contour_boxes(m01, thresholds)
    best = box_iou(np.concatenate(per_threshold), np.asarray(gt)).max(axis=1)
    starts = np.cumsum([0] + [len(b) for b in per_threshold[:-1]])
    return np.maximum.reduceat(best, starts)
