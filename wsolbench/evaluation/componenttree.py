"""Every threshold's boxes in one pass per map (component trees by union-find).

Thresholding a map at 100 levels and tracing it each time repeats the same work:
the components of ``map > k`` only grow and merge as ``k`` falls. Adding the map's
row runs (pixels of one row between two cut levels) from the highest level down, with
a union-find that carries each component's bounding box, size and first 2x2 block
(cv2's label order), gives every component at every level in about O(HW) for uint8
maps. The holes that cv2's RETR_TREE also traces are the 4-connected components of
``map <= k`` that do not touch the image border; they grow as ``k`` rises, so a
second pass adds the runs from the lowest level up.

Most pixels never need the union-find. A pixel is in the component of the map's
maximum from the level of its best 8-path there (the path's lowest band) down, and in
the border's component of ``map <= k`` from the level of its best 4-path to the border
(the path's highest band) up; both path levels come from a reconstruction by raster
sweeps. The maximum's component's box at every level is then a running min / max over
those levels, and the union-finds add only the pixels below their path level: the
other components (about 17 % of the runs on ViT-like maps) and the holes.

Most of those cannot win either. Every other component at a level lies in one
connected part of the pixels below their path level, every hole in one of the pixels
below theirs to the border; a part's box covers at most so much of a GT box, so the
outer union-find stops at the lowest level where a part could beat the peak's box
(about 3 % of its runs remain), and the hole pass runs only where a part of hole
pixels could beat the best box (1 % of the maps). One pair of sweeps already bounds
the border's levels well enough to decide that.

A run finds the components it touches in a bitset of the pixels added so far, one
word per 64 pixels of a row: a block of set bits is one component, so it is linked
once, however long it is.

The path levels are ``pathlevels``' and the parts and bounds ``levelparts``'; the
per-threshold cv2 procedures in ``reference.py`` are the oracle these are tested
against, for both rules, map by map and threshold by threshold.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba.cpython.unsafe.numbers import trailing_zeros

from wsolbench.evaluation.boxscore import _cover, _iou
from wsolbench.evaluation.levelparts import (
    _differ_bits,
    _holes_wanted,
    _next_bit,
    _outer_wanted,
    _parts,
)
from wsolbench.evaluation.pathlevels import _path_levels

_ONE = np.uint64(1)
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)


# A root's row in the node table (32 bytes per root, so a union reads two).
X0, Y0, X1, Y1, SIZE, FIRST = range(6)
NO_PEAK = np.empty((0, 4), np.int64)  # the hole pass's ``peak``


@nb.njit(cache=True)
def _new_forest(h: int, w: int):
    """Union-find state over the pixels of an h x w map: parent (by pixel); per root
    its box x0, y0, x1, y1 (inclusive), size and first 2x2 block in raster order; the
    bitset of added pixels, row by row."""
    n = h * w
    parent = np.empty(n, np.int32)
    node = np.empty((n, 8), np.int32)
    added = np.zeros((h, (w + 63) >> 6), np.uint64)
    return parent, node, added


@nb.njit(cache=True, inline="always")
def _root(parent: np.ndarray, q: int) -> int:
    r = q
    while parent[r] != r:
        r = parent[r]
    while parent[q] != r:  # path compression
        nxt = parent[q]
        parent[q] = r
        q = nxt
    return r


@nb.njit(cache=True, inline="always")
def _link(q, root, parent, node) -> int:
    """Merge the component of added pixel ``q`` with ``root``'s (-1: none yet);
    returns the root of the union."""
    if root != -1 and parent[q] == root:  # already together: q is root or its child
        return root
    r = _root(parent, q)
    if root == -1 or r == root:
        return r
    a, b = (root, r) if node[root, SIZE] >= node[r, SIZE] else (r, root)  # union by size
    parent[b] = a
    node[a, X0], node[a, Y0] = min(node[a, X0], node[b, X0]), min(node[a, Y0], node[b, Y0])
    node[a, X1], node[a, Y1] = max(node[a, X1], node[b, X1]), max(node[a, Y1], node[b, Y1])
    node[a, SIZE] += node[b, SIZE]
    node[a, FIRST] = min(node[a, FIRST], node[b, FIRST])
    return a


@nb.njit(cache=True, inline="always")
def _window(added: np.ndarray, y: int, lo: int, hi: int) -> np.uint64:
    """Bits lo..hi (at most 64) of row y as one word, bit 0 for pixel lo."""
    k, s = lo >> 6, np.uint64(lo & 63)
    v = added[y, k] >> s
    if s and k + 1 < added.shape[1]:
        v |= added[y, k + 1] << (np.uint64(64) - s)
    if hi - lo < 63:
        v &= (_ONE << np.uint64(hi - lo + 1)) - _ONE
    return v


@nb.njit(cache=True, inline="always")
def _add_run(x0, x1, y, w, h, diagonal, forest) -> int:
    """Add the run of pixels x0..x1 of row y, joined with their added neighbours
    (8-connected with ``diagonal``, else 4-connected); returns the root of their
    component (the run's first pixel itself when it is new)."""
    parent, node, added = forest
    p0 = y * w + x0
    root = -1
    if x0 > 0 and (added[y, (x0 - 1) >> 6] >> np.uint64((x0 - 1) & 63)) & _ONE:
        root = _link(p0 - 1, root, parent, node)
    if x1 < w - 1 and (added[y, (x1 + 1) >> 6] >> np.uint64((x1 + 1) & 63)) & _ONE:
        root = _link(p0 + x1 - x0 + 1, root, parent, node)
    reach = 1 if diagonal else 0
    lo, hi = max(x0 - reach, 0), min(x1 + reach, w - 1)
    for yy in (y - 1, y + 1):
        if yy < 0 or yy >= h:
            continue
        if hi - lo < 64:
            v = _window(added, yy, lo, hi)
            while v:  # one link per block of added pixels
                q = yy * w + lo + trailing_zeros(v)
                root = _link(q, root, parent, node)
                v &= v + (v & (~v + _ONE))  # clear the lowest block of ones
        else:  # a run wider than a word: pixel by pixel
            for x in range(lo, hi + 1):
                if (added[yy, x >> 6] >> np.uint64(x & 63)) & _ONE:
                    root = _link(yy * w + x, root, parent, node)
    if root == -1:  # a component of its own
        root = p0
        node[p0, X0], node[p0, Y0], node[p0, X1], node[p0, Y1] = x0, y, x1, y
        node[p0, SIZE] = 0
    else:
        node[root, X0], node[root, Y0] = min(node[root, X0], x0), min(node[root, Y0], y)
        node[root, X1], node[root, Y1] = max(node[root, X1], x1), max(node[root, Y1], y)
    # cv2's 8-connected labelling (Spaghetti) scans 2x2 blocks in raster order and a
    # block holds at most one component: labels follow each one's first block.
    block = (y >> 1) * ((w + 1) >> 1) + (x0 >> 1)
    node[root, FIRST] = block if root == p0 else min(node[root, FIRST], block)
    node[root, SIZE] += x1 - x0 + 1
    for p in range(p0, p0 + x1 - x0 + 1):
        parent[p] = root
    for k in range(x0 >> 6, (x1 >> 6) + 1):
        a, b = max(x0 - (k << 6), 0), min(x1 - (k << 6), 63)
        added[y, k] |= (_ALL >> np.uint64(63 - b)) & (_ALL << np.uint64(a))
    return root


@nb.njit(cache=True, inline="always")
def _kept_runs(band, bits, lowest, highest, rx0, rx1, ry, rband, count) -> int:
    """``_runs_by_band``'s runs of the pixels whose bit is set in ``bits`` (one per
    pixel, raster order) and whose band is in ``lowest..highest``: 7-17 % of the
    pixels on ViT-like maps, found a word at a time. Returns the index of the last
    run."""
    h, w = band.shape
    flat = band.reshape(h * w)
    r = -1
    for i in range(h):
        p, end = i * w, (i + 1) * w
        while True:
            s = _next_bit(bits, p, end, True)
            if s >= end:
                break
            p = _next_bit(bits, s, end, False)  # one past the set bits
            prev = -1
            for q in range(s, p):
                b = flat[q]
                if b < lowest or b > highest:
                    prev = -1  # left out: the next kept pixel starts a run
                elif b != prev:
                    r += 1
                    rx0[r], ry[r], rband[r], prev = q - i * w, i, b, b
                    count[b + 1] += 1
                    rx1[r] = q - i * w
                else:
                    rx1[r] = q - i * w
    return r


@nb.njit(cache=True)
def _runs_by_band(band: np.ndarray, nbands: int, bits, lowest: int, highest: int):
    """The maximal runs of equal band in each row of a (h, w) band image, grouped by
    band (counting sort), raster order inside a band: x0, x1, y, and
    ``start[b]: start[b + 1]`` for band b. With ``bits`` (``_differ_bits``), only the
    pixels whose bit is set and whose band is in ``lowest..highest`` (None: every
    pixel). One pass finds the runs, one places them."""
    h, w = band.shape
    rx0, rx1 = np.empty(h * w, np.int32), np.empty(h * w, np.int32)
    ry, rband = np.empty(h * w, np.int32), np.empty(h * w, np.int32)
    count = np.zeros(nbands + 1, np.int64)
    r = -1
    if bits is not None:
        r = _kept_runs(band, bits, lowest, highest, rx0, rx1, ry, rband, count)
    else:
        for i in range(h):
            prev = -1
            for j in range(w):
                b = band[i, j]
                if b != prev:
                    r += 1
                    rx0[r], ry[r], rband[r], prev = j, i, b, b
                    count[b + 1] += 1
                rx1[r] = j
    start = np.cumsum(count)
    fill = start[:-1].copy()
    x0 = np.empty(r + 1, np.int32)
    x1, y = np.empty_like(x0), np.empty_like(x0)
    for k in range(r + 1):
        d = fill[rband[k]]
        fill[rband[k]] += 1
        y[d], x0[d], x1[d] = ry[k], rx0[k], rx1[k]
    return x0, x1, y, start


@nb.njit(cache=True, inline="always")
def _best_alive(roots, nroots, forest, path, level, hole, w, h, gt) -> tuple[float, float, int]:
    """Best IoU and most of a GT box covered (``_cover``, outer only) over the live
    components' contour boxes: outer (x0, y0, x1 + 1, y1 + 1), or with ``hole`` the
    one-pixel-wider box cv2 traces around a hole, clipped to W-1 / H-1. A component
    is alive while it is not yet the peak's (outer) or the border's (hole), as its
    path level says; ``roots`` is compacted to them, their count returned."""
    parent, node = forest[0], forest[1]
    best, cover, kept = -1.0, 0.0, 0
    grow = 1 if hole else 0
    for j in range(nroots):
        r = roots[j]
        if parent[r] != r or (path[r] <= level if hole else path[r] > level):
            continue  # merged away, or joined the peak's / border's component for good
        roots[kept] = r
        kept += 1
        bx0, by0 = node[r, X0] - grow, node[r, Y0] - grow
        x1, y1 = min(node[r, X1] + 1 + grow, w - 1), min(node[r, Y1] + 1 + grow, h - 1)
        best = max(best, _iou(bx0, by0, x1, y1, gt))
        if not hole:
            cover = max(cover, _cover(bx0, by0, x1, y1, gt))
    return best, cover, kept


@nb.njit(cache=True)
def _peak_box(path: np.ndarray, m: int) -> np.ndarray:
    """(m + 1, 4) per level k, the box of the pixels whose path level is k or more
    (x0, y0, x1, y1; empty: x1 = -1): the peak's component's box at level k. From
    each row's and each column's highest path level."""
    h, w = path.shape
    colmax = np.zeros(w, np.uint8)
    rowmax = np.zeros(h, np.uint8)
    for i in range(h):
        r = np.uint8(0)
        for j in range(w):
            colmax[j] = max(colmax[j], path[i, j])
            r = max(r, path[i, j])
        rowmax[i] = r
    ex = np.empty((m + 1, 4), np.int64)
    ex[:, 0], ex[:, 1], ex[:, 2], ex[:, 3] = w, h, -1, -1
    for j in range(w):
        k = colmax[j]
        ex[k, 0], ex[k, 2] = min(ex[k, 0], j), max(ex[k, 2], j)
    for i in range(h):
        k = rowmax[i]
        ex[k, 1], ex[k, 3] = min(ex[k, 1], i), max(ex[k, 3], i)
    for k in range(m - 1, -1, -1):
        ex[k, 0], ex[k, 1] = min(ex[k, 0], ex[k + 1, 0]), min(ex[k, 1], ex[k + 1, 1])
        ex[k, 2], ex[k, 3] = max(ex[k, 2], ex[k + 1, 2]), max(ex[k, 3], ex[k + 1, 3])
    return ex


@nb.njit(cache=True)
def _contour_pass(path, runs, gt, hole, wanted, peak) -> tuple[np.ndarray, np.ndarray]:
    """Best IoU at each of the m distinct levels (band b: values above b levels), and
    the most of a GT box a component covers there, both only at the ``wanted`` levels.
    Outer (not ``hole``): 8-connected components of the bands above the level: the
    peak's, boxed by ``peak`` (``_peak_box``) at every level, and the others, whose
    pixels are the only ones the union-find adds (``runs``: the pixels below their
    ``path`` level to the peak), bands from the top down to the lowest wanted level;
    (0, 0, 0, 0) when nothing is above. Holes: 4-connected components of the bands at
    or below the level off the image border: only pixels below their path level to
    the border can be in one, added from the bottom up to the last wanted level; -1
    where there is none. One signature for both passes, so numba compiles it once."""
    h, w = path.shape
    x0, x1, y, start = runs
    m = start.size - 2
    forest = _new_forest(h, w)
    flat = path.reshape(h * w)
    roots = np.empty(x0.size, np.int32)
    nroots = 0
    out, cover = np.full(m, -1.0), np.zeros(m)
    at = np.flatnonzero(wanted)
    steps = m if not hole else (at[-1] + 1 if at.size else 0)
    lowest = at[0] if at.size else m  # outer: no run below it is needed
    for step in range(steps):
        level = step if hole else m - 1 - step
        band_in = level if hole else level + 1  # the band that joins at this level
        if hole or level >= lowest:
            for k in range(start[band_in], start[band_in + 1]):
                r = _add_run(x0[k], x1[k], y[k], w, h, not hole, forest)
                if r == y[k] * w + x0[k]:  # a new component: one more root to score
                    roots[nroots] = r
                    nroots += 1
        if wanted[level]:
            out[level], cover[level], nroots = _best_alive(
                roots, nroots, forest, flat, level, hole, w, h, gt
            )
        if not hole and peak[level + 1, 2] >= 0:  # the peak's component
            box = peak[level + 1]
            bx1, by1 = min(box[2] + 1, w - 1), min(box[3] + 1, h - 1)
            out[level] = max(out[level], _iou(box[0], box[1], bx1, by1, gt))
            cover[level] = max(cover[level], _cover(box[0], box[1], bx1, by1, gt))
        elif not hole:  # nothing above the level: no peak, no other component
            out[level] = _iou(0, 0, 0, 0, gt)
    return out, cover


@nb.njit(cache=True)
def _benchmark_bands(m01: np.ndarray, thresholds: np.ndarray):
    """The benchmark's cut of a [0, 1] map: uint8 ``m * 255`` (from float64, truncated),
    cut levels ``int(t * max)``; returns each pixel's band (how many distinct cut
    levels lie below its uint8 value), the number of distinct levels and each
    threshold's index among them."""
    h, w = m01.shape
    gray = np.empty((h, w), np.uint8)
    for i in range(h):
        src, dst = m01[i], gray[i]
        for j in range(w):  # to int32, which vectorises (AVX2 has no float64 -> int64)
            dst[j] = min(np.int32(np.float64(src[j]) * 255.0), np.int32(255))
    top = np.uint8(0)
    for i in range(h):
        row = gray[i]
        for j in range(w):
            top = max(top, row[j])
    present = np.zeros(257, np.int64)
    for t in thresholds:
        present[int(t * top) + 1] = 1  # int(t * max): t * max >= 0
    below = np.cumsum(present)  # below[v]: distinct levels below v
    lut = below.astype(np.uint8)
    index = np.empty(thresholds.size, np.int64)
    for k in range(thresholds.size):
        index[k] = below[int(thresholds[k] * top)]
    band = np.empty((h, w), np.uint8)
    for i in range(h):
        src, dst = gray[i], band[i]
        for j in range(w):
            dst[j] = lut[src[j]]
    return band, below[256], index


def _contour_best(m01: np.ndarray, gt: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """(T,) best IoU at each threshold over every box cv2's RETR_TREE contours give
    (outer and hole borders). Plain Python over the compiled steps: compiled as one
    function, numba re-optimised every step inside it (19 s more on a fresh clone) for
    a few microseconds a map."""
    band, m, index = _benchmark_bands(m01, thresholds)
    to_peak = _path_levels(band, m, True)
    bits = _differ_bits(to_peak, band)  # the pixels another component can hold
    peak = _peak_box(to_peak, m)
    outer = _outer_wanted(_parts(to_peak, band, bits, True), gt, peak, *band.shape)
    # the union-find adds runs down to the lowest level it is wanted at only
    lowest = np.argmax(outer) if np.count_nonzero(outer) else m
    runs = _runs_by_band(band, m + 1, bits, lowest + 1, 255)
    best, cover = _contour_pass(to_peak, runs, gt, False, outer, peak)
    # A level's holes can beat its outer boxes only where a component covers more of
    # a GT box than the best IoU (the peak's, where the others' are not wanted); the
    # hole pass stops after the last such level.
    wanted = cover > best
    if np.count_nonzero(wanted):  # (ndarray.any() takes 1.4 us, this 0.4)
        # One pair of sweeps bounds the border's levels from above: its hole pixels
        # hold every hole, and rule them out on 99 % of ViT-like maps.
        bound = _path_levels(band, m, False, 1)
        wanted = _holes_wanted(band, bound, _differ_bits(band, bound), gt, best, wanted)
        if np.count_nonzero(wanted):
            best = _holes_best(band, m, gt, best, wanted)
    return best[index]


def _holes_best(band, m: int, gt, best, wanted) -> np.ndarray:
    """``best`` raised by the holes' boxes, at the ``wanted`` levels (left by a bound)
    where the border's path levels in full still let a hole win."""
    to_border = _path_levels(band, m, False)
    bits = _differ_bits(band, to_border)  # the pixels a hole can hold
    wanted = _holes_wanted(band, to_border, bits, gt, best, wanted)
    if not np.count_nonzero(wanted):
        return best
    last = len(wanted) - 1 - np.argmax(wanted[::-1])
    runs = _runs_by_band(band, m + 1, bits, 0, last)
    return np.maximum(best, _contour_pass(to_border, runs, gt, True, wanted, NO_PEAK)[0])


@nb.njit(cache=True)
def _largest_boxes(band: np.ndarray, t: int) -> np.ndarray:
    """(T, 4) box of the largest 8-connected component of ``m > t`` for ascending
    thresholds: (x0, y0, x1 + 1, y1 + 1); no pixel above t -> the whole frame
    (0, 0, W, H). By pixel count; a tie goes to the component cv2's labelling numbers
    first (the one whose first 2x2 block comes first in raster order). The SAT/TS-CAM
    authors' rule. ``band``: how many of the t thresholds lie below each pixel."""
    h, w = band.shape
    x0, x1, y, start = _runs_by_band(band, t + 1, None, 0, 255)
    forest = _new_forest(h, w)
    parent, node = forest[0], forest[1]
    out = np.empty((t, 4), np.int64)
    best, best_size, best_first = -1, 0, 0
    for i in range(t - 1, -1, -1):
        for k in range(start[i + 1], start[i + 2]):  # the pixels above threshold i
            r = _add_run(x0[k], x1[k], y[k], w, h, True, forest)
            size, first = node[r, SIZE], node[r, FIRST]
            if size > best_size or (size == best_size and first < best_first):
                best, best_size, best_first = r, size, first
        if best < 0:
            out[i, 0], out[i, 1], out[i, 2], out[i, 3] = 0, 0, w, h
        else:
            r = _root(parent, best)
            out[i, 0], out[i, 1] = node[r, X0], node[r, Y0]
            out[i, 2], out[i, 3] = node[r, X1] + 1, node[r, Y1] + 1
    return out


def as_float_map(m: np.ndarray) -> np.ndarray:
    """float32 stays float32 (the compiled kernels take both), anything else becomes
    float64; C order."""
    m = np.asarray(m)
    return np.ascontiguousarray(m if m.dtype in (np.float32, np.float64) else m.astype(np.float64))


def largest_component_boxes(m: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """SAT/TS-CAM authors' rule on an (authors-normalised) map: (T, 4) boxes, see
    ``_largest_boxes``. Float32 maps are compared in float64, as numpy compares them
    with float64 thresholds."""
    # A pixel's band: how many thresholds lie below its value (exact float compares).
    band = np.searchsorted(thresholds, np.asarray(m, np.float64), side="left")
    return _largest_boxes(band, len(thresholds))


def best_contour_iou(m01: np.ndarray, gt: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """WSOL benchmark's MaxBoxAccV2 rule: (T,) best IoU over every contour box and
    every GT box at each threshold. The map becomes uint8 from float64
    (``(m * 255)``, as the benchmark's loader hands it over) and is cut at
    ``int(t * max)``, strictly above."""
    gt = np.ascontiguousarray(gt, np.float64).reshape(-1, 4)
    return _contour_best(as_float_map(m01), gt, np.asarray(thresholds, np.float64))


RULES = ("largest", "contour")


def warm_up(*rules: str) -> float:
    """Compile (or load from numba's cache) the kernels of ``rules`` (default: both
    rules) on a tiny map, so the first scored batch does not pay for it; the seconds it
    took. Each rule compiles on its own, so two processes can compile them at once."""
    import time

    t0 = time.perf_counter()
    tiny = np.linspace(0.0, 1.0, 16).reshape(4, 4)
    thresholds = np.arange(0.0, 1.0, 0.5)
    if "largest" in (rules or RULES):
        largest_component_boxes(tiny, thresholds)
    if "contour" in (rules or RULES):
        # a ring, and a GT box its hole could match: every step runs, the hole pass too
        ring = np.zeros((7, 7))
        ring[1:6, 1:6] = 1.0
        ring[2:5, 2:5] = 0.0
        for m in (ring, ring.astype(np.float32)):
            best_contour_iou(m, np.array([[1.0, 1.0, 5.0, 5.0]]), thresholds)
    return time.perf_counter() - t0
