"""One box's IoU and the share of a GT box it covers, compiled for the box passes
(``componenttree``, ``levelparts``): float64, the same operations as
``boxes.box_iou``, so both give bit-identical values."""

from __future__ import annotations

import numba as nb


@nb.njit(cache=True, inline="always")
def _iou(x0, y0, x1, y1, gt) -> float:
    """Best IoU (+1 convention) of one box with the GT boxes, in float64 with the same
    operations as ``boxes.box_iou``, so both give bit-identical values."""
    best = -1.0
    for g in range(gt.shape[0]):
        iw = min(float(x1), gt[g, 2]) - max(float(x0), gt[g, 0]) + 1
        ih = min(float(y1), gt[g, 3]) - max(float(y0), gt[g, 1]) + 1
        inter = max(iw, 0.0) * max(ih, 0.0)
        a = (float(x1) - float(x0) + 1) * (float(y1) - float(y0) + 1)
        b = (gt[g, 2] - gt[g, 0] + 1) * (gt[g, 3] - gt[g, 1] + 1)
        best = max(best, inter / (a + b - inter))
    return best


@nb.njit(cache=True, inline="always")
def _cover(x0, y0, x1, y1, gt) -> float:
    """The most of a GT box a box covers, |box & g| / |g| (+1 convention): no box
    inside it has a larger IoU with g, and no hole's box is bigger than the box of
    the component around it, so it bounds the holes' IoU too (in float64 as well:
    the IoU divides a smaller integer by a larger one)."""
    best = 0.0
    for g in range(gt.shape[0]):
        iw = min(float(x1), gt[g, 2]) - max(float(x0), gt[g, 0]) + 1
        ih = min(float(y1), gt[g, 3]) - max(float(y0), gt[g, 1]) + 1
        area = (gt[g, 2] - gt[g, 0] + 1) * (gt[g, 3] - gt[g, 1] + 1)
        best = max(best, max(iw, 0.0) * max(ih, 0.0) / area)
    return best
