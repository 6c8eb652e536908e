"""Which levels the box passes in ``componenttree`` need. Every component other than
the peak's at a level lies in one connected part of the pixels below their path level
to the peak, every hole in one of the pixels below theirs to the border; a part's box
covers at most so much of a GT box, so a pass skips the levels where no live part
could beat the best box there. The parts come from a bitset of those pixels, which the
passes' runs reuse."""

from __future__ import annotations

import numba as nb
import numpy as np
from numba.cpython.unsafe.numbers import trailing_zeros

from wsolbench.evaluation.boxscore import _cover, _iou

_ONE = np.uint64(1)
_BYTE_LSBS = np.uint64(0x0101010101010101)
_GATHER = np.uint64(0x0102040810204080)  # byte i's low bit -> bit 56 + i


@nb.njit(cache=True)
def _differ_bits(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """One bit per pixel, in raster order, set where ``low`` and ``high`` differ:
    each 8-byte word's differing bytes gathered into 8 bits, eight words to one
    64-bit word of the bitset (a loop that vectorises)."""
    n = low.size
    lf, hf = low.reshape(n), high.reshape(n)
    lw, hw = lf[: n & ~63].view(np.uint64), hf[: n & ~63].view(np.uint64)
    bits = np.zeros((n + 63) >> 6, np.uint64)
    for o in range(n >> 6):
        acc = np.uint64(0)
        for t in range(8):
            d = lw[o * 8 + t] ^ hw[o * 8 + t]
            d |= d >> np.uint64(4)
            d |= d >> np.uint64(2)
            d |= d >> np.uint64(1)
            acc |= (((d & _BYTE_LSBS) * _GATHER) >> np.uint64(56)) << np.uint64(8 * t)
        bits[o] = acc
    for q in range(n & ~63, n):
        if lf[q] != hf[q]:
            bits[q >> 6] |= _ONE << np.uint64(q & 63)
    return bits


@nb.njit(cache=True, inline="always")
def _next_bit(bits: np.ndarray, p: int, end: int, value: bool) -> int:
    """The first position from ``p`` whose bit is ``value``, or ``end``."""
    while p < end:
        v = bits[p >> 6] if value else ~bits[p >> 6]
        v >>= np.uint64(p & 63)
        if v:
            return min(p + trailing_zeros(v), end)
        p = (p | 63) + 1
    return end


@nb.njit(cache=True, inline="always")
def _run_root(parent: np.ndarray, k: int) -> int:
    while parent[k] != k:
        parent[k] = parent[parent[k]]  # path halving
        k = parent[k]
    return k


@nb.njit(cache=True, inline="always")
def _part_runs(low, high, bits, reach, run, parent) -> int:
    """``_parts``' row runs of the pixels whose bit is set in ``bits``, each joined
    (run-index union-find) with the runs of the row above it touches (``reach`` 1:
    diagonally too): per run x0, x1, y, its lowest ``low`` and highest ``high`` in
    ``run``. Returns the number of runs."""
    h, w = low.shape
    lf, hf = low.reshape(h * w), high.reshape(h * w)
    nr, above, above_end = 0, 0, 0
    for i in range(h):
        p, end, first = i * w, (i + 1) * w, nr
        while True:
            s = _next_bit(bits, p, end, True)
            if s >= end:
                break
            p = _next_bit(bits, s, end, False)  # one past the run
            lo, hi = lf[s], hf[s]
            for q in range(s + 1, p):
                lo, hi = min(lo, lf[q]), max(hi, hf[q])
            x0, x1 = s - i * w, p - 1 - i * w
            run[nr, 0], run[nr, 1], run[nr, 2], run[nr, 3], run[nr, 4] = x0, x1, i, lo, hi
            parent[nr] = nr
            while above < above_end and run[above, 1] < x0 - reach:
                above += 1  # ends left of this run, so of every later one too
            k = above
            while k < above_end and run[k, 0] <= x1 + reach:
                a, b = _run_root(parent, k), _run_root(parent, nr)
                parent[max(a, b)] = min(a, b)
                k += 1
            nr += 1
        above, above_end = first, nr
    return nr


@nb.njit(cache=True)
def _parts(low: np.ndarray, high: np.ndarray, bits: np.ndarray, diagonal: bool):
    """The 8-connected (``diagonal``) or 4-connected parts of the pixels where ``low <
    high`` (their bits in ``bits``; ``low <= high`` everywhere): per part its box x0,
    y0, x1, y1 (x1 = -1: a slot no part holds) and its span of levels, from its
    lowest ``low`` to its highest ``high``. Every component of the pixels with ``low
    <= level < high`` lies in one."""
    h, w = low.shape
    most = h * ((w + 1) >> 1)  # runs at most
    run, parent = np.empty((most, 5), np.int32), np.empty(most, np.int32)
    nr = _part_runs(low, high, bits, 1 if diagonal else 0, run, parent)
    box = np.full((nr, 4), -1, np.int64)
    box[:, 0], box[:, 1] = w, h
    lo, hi = np.full(nr, 255, np.int64), np.zeros(nr, np.int64)
    for k in range(nr):
        q = _run_root(parent, k)
        box[q, 0], box[q, 2] = min(box[q, 0], run[k, 0]), max(box[q, 2], run[k, 1])
        box[q, 1], box[q, 3] = min(box[q, 1], run[k, 2]), max(box[q, 3], run[k, 2])
        lo[q], hi[q] = min(lo[q], run[k, 3]), max(hi[q], run[k, 4])
    return box, lo, hi


@nb.njit(cache=True, inline="always")
def _part_cover(parts, m, gt, grow, w, h) -> np.ndarray:
    """Per level k < m, the most of a GT box the box of a part alive there covers
    (``_cover``), each part's box grown as cv2 traces an outer border (``grow`` 0) or
    a hole's (1)."""
    box, lo, hi = parts
    most = np.zeros(m)
    for q in range(lo.size):
        if box[q, 2] < 0:
            continue  # merged into another part
        x1, y1 = min(box[q, 2] + 1 + grow, w - 1), min(box[q, 3] + 1 + grow, h - 1)
        c = _cover(box[q, 0] - grow, box[q, 1] - grow, x1, y1, gt)
        for k in range(lo[q], min(hi[q], m)):
            most[k] = max(most[k], c)
    return most


@nb.njit(cache=True)
def _outer_wanted(parts, gt, peak, h: int, w: int) -> np.ndarray:
    """The levels where a component other than the peak's can beat the peak's box.
    Its pixels have ``to_peak <= level < band``, so it lies in one of their 8-connected
    ``parts``, whose box's cover bounds its IoU. Elsewhere its holes cannot beat it
    either: a hole's box lies in its component's. (The parts come in made: compiled
    inside both callers, ``_parts`` took 3 s more to compile.)"""
    m = peak.shape[0] - 1
    most = _part_cover(parts, m, gt, 0, w, h)
    wanted = np.zeros(m, np.bool_)
    for k in range(m):
        if most[k] > 0.0:  # a part is alive: the peak is above the level too
            box = peak[k + 1]
            bx1, by1 = min(box[2] + 1, w - 1), min(box[3] + 1, h - 1)
            wanted[k] = most[k] > _iou(box[0], box[1], bx1, by1, gt)
    return wanted


@nb.njit(cache=True)
def _hole_wanted(parts, gt, best, wanted, h: int, w: int) -> np.ndarray:
    """``wanted`` narrowed to the levels where a hole's box can beat ``best``: a hole's
    pixels have ``band <= level < to_border`` (off the border's component), so it
    lies in one of their 4-connected ``parts``, and its traced box covers no more of
    a GT box than the part's box grown the same way."""
    most = _part_cover(parts, wanted.size, gt, 1, w, h)
    return wanted & (most > best)


def _holes_wanted(band, to_border, bits, gt, best, wanted) -> np.ndarray:
    """``_hole_wanted`` from the border's path levels (or a bound above them) and the
    bitset of the pixels below them."""
    parts = _parts(band, to_border, bits, False)
    return _hole_wanted(parts, gt, best, wanted, band.shape[0], band.shape[1])
