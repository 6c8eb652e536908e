"""PxAP's histograms of a map's object and background pixels in one compiled pass.

``np.histogram`` with uneven edges sorts the values and searches the edges, twice a map
(object, background): most of PxAP's time. Here each pixel's bin is guessed from the
first edge step and then moved until ``edges[k] <= v < edges[k + 1]`` holds against the
edges themselves, so the bins are ``np.histogram``'s exactly, for any rising edges: the
last bin is closed, values outside ``[edges[0], edges[-1]]`` are not counted.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True)
def _bin(v: float, edges: np.ndarray, step: float) -> int:
    """``np.histogram``'s bin of ``v`` (-1: outside every bin)."""
    last = edges.size - 1
    if not (edges[0] <= v <= edges[last]):  # also NaN: np.histogram skips it
        return -1
    if v == edges[last]:
        return last - 1  # the last bin is closed on the right
    k = min(max(int((v - edges[0]) / step), 0), last - 1) if step > 0 else 0
    while v < edges[k]:
        k -= 1
    while v >= edges[k + 1]:
        k += 1
    return k


@nb.njit(cache=True)
def object_background_histograms(m: np.ndarray, mask: np.ndarray, edges: np.ndarray, ignore: int):
    """(2, bins) counts of ``m``'s values (compared in float64) at object pixels
    (``mask == 1``) and at background pixels (neither 1 nor ``ignore``)."""
    out = np.zeros((2, edges.size - 1), np.int64)
    step = edges[1] - edges[0]
    h, w = m.shape
    for i in range(h):
        for j in range(w):
            label = mask[i, j]
            if label == ignore:
                continue
            k = _bin(np.float64(m[i, j]), edges, step)
            if k >= 0:
                out[0 if label == 1 else 1, k] += 1
    return out


def warm_up() -> None:
    """Compile (or load from numba's cache) the kernel for float32 and float64 maps and
    uint8 masks, so that the first scored batch does not pay for it."""
    edges = np.array([0.0, 0.5, 1.0, 2.0, 3.0])
    mask = np.zeros((2, 2), np.uint8)
    for dtype in (np.float32, np.float64):
        object_background_histograms(np.zeros((2, 2), dtype), mask, edges, 255)
