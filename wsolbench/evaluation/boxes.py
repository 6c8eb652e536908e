"""Thresholds, map normalisation and box IoU shared by the two protocols of the field
(the boxes themselves come from ``componenttree``).

Boxes are ``x0, y0, x1, y1`` in pixels; IoU uses the +1 convention
(width = x1 - x0 + 1), as both the SAT authors' and the WSOL benchmark's code do.
"""

from __future__ import annotations

import numpy as np

from wsolbench.data.annotations import box_sizes_of

# The SAT authors' box thresholds (a sub-range of these in their code), compared with
# ``m > t`` on float maps.
THRESHOLDS = np.round(np.arange(0.0, 1.0, 0.01), 2)
# The WSOL benchmark's ``np.arange(0, 1, cam_curve_interval)`` left unrounded, as its
# evaluator uses it: 0.35, 0.57, 0.70 and 0.82 sit a hair off, which moves
# ``int(t * max)`` for some uint8 maxima (e.g. int(0.7000000000000001 * 90) = 63, not
# 62) and decides which bin a map value of exactly 0.7 falls in.
BENCHMARK_THRESHOLDS = np.arange(0.0, 1.0, 0.01)
DEFAULT_INTERVAL = 0.01


def benchmark_thresholds(cam_curve_interval: float = DEFAULT_INTERVAL) -> np.ndarray:
    """The benchmark's ``np.arange(0, 1, cam_curve_interval)``, unrounded, any interval."""
    if cam_curve_interval == DEFAULT_INTERVAL:
        return BENCHMARK_THRESHOLDS
    return np.arange(0.0, 1.0, cam_curve_interval)


def normalize_authors(m: np.ndarray) -> np.ndarray:
    """SAT authors: (m - min) / (max - min + 1e-5)."""
    return (m - m.min()) / (m.max() - m.min() + 1e-5)


def normalize_benchmark(m: np.ndarray) -> np.ndarray:
    """WSOL benchmark: min-max to [0, 1]; constant or NaN maps become all zeros."""
    lo, hi = m.min(), m.max()
    if not np.isfinite(lo) or not np.isfinite(hi) or hi == lo:
        return np.zeros_like(m)
    return (m - lo) / (hi - lo)


def threshold_index(box_threshold: float) -> int:
    """The index in THRESHOLDS of a record's box threshold (stored as a float)."""
    return int(np.argmin(np.abs(THRESHOLDS - box_threshold)))


def box_area(boxes: np.ndarray) -> np.ndarray:
    """Areas (+1 convention) of (n, 4) boxes."""
    return box_sizes_of(boxes).prod(axis=-1)


def box_iou(boxes: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """IoU (+1 convention) of each box (T, 4) with each GT box (G, 4): (T, G)."""
    b = boxes[:, None, :].astype(np.float64)
    g = gt[None, :, :].astype(np.float64)
    iw = np.minimum(b[..., 2], g[..., 2]) - np.maximum(b[..., 0], g[..., 0]) + 1
    ih = np.minimum(b[..., 3], g[..., 3]) - np.maximum(b[..., 1], g[..., 1]) + 1
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    return inter / (box_area(b) + box_area(g) - inter)
