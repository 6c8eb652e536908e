"""Every threshold's boxes in one pass per map (component trees by union-find).

Thresholding a map at 100 levels and tracing it each time repeats the same work:
the components of ``map > k`` only grow and merge as ``k`` falls. Adding pixels from
the highest value down, with a union-find that carries each component's bounding box,
area and first 2x2 block (cv2's label order), gives every component at every level in about
O(HW) for uint8 maps (O(HW log HW) for float ones). The holes that cv2's RETR_TREE
also traces are the 4-connected components of ``map <= k`` that do not touch the
image border; they grow as ``k`` rises, so a second pass adds pixels from the lowest
value up.

The per-threshold cv2 procedures in ``reference.py`` are the oracle these are tested
against, for both rules, map by map and threshold by threshold.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True)
def _new_forest(n: int):
    """Union-find state over the n pixels of a map: parent (-1: not added yet), the
    root's box x0, y0, x1, y1 (inclusive), its size, its first 2x2 block in raster
    order, and whether it touches the image border."""
    parent = np.full(n, -1, np.int32)
    box = np.empty((4, n), np.int32)
    size = np.empty(n, np.int32)
    first = np.empty(n, np.int32)
    border = np.empty(n, np.bool_)
    return parent, box, size, first, border


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
def _link(q, root, parent, box, size, first, border) -> int:
    """Merge the component of added pixel ``q`` with ``root``'s (-1: none yet);
    returns the root of the union."""
    if root != -1 and parent[q] == root:  # already together: q is root or its child
        return root
    r = _root(parent, q)
    if root == -1 or r == root:
        return r
    a, b = (root, r) if size[root] >= size[r] else (r, root)  # union by size
    parent[b] = a
    for k in range(2):
        box[k, a] = min(box[k, a], box[k, b])
        box[k + 2, a] = max(box[k + 2, a], box[k + 2, b])
    size[a] += size[b]
    first[a] = min(first[a], first[b])
    border[a] = border[a] or border[b]
    return a


@nb.njit(cache=True)
def _add_run(p0, x0, x1, y, w, h, diagonal, parent, box, size, first, border) -> int:
    """Add the run of pixels x0..x1 of row y (``p0``: x0's index), joined with their
    added neighbours (8-connected with ``diagonal``, else 4-connected); returns the
    root of their component (``p0`` itself when it is new). A run is linked once
    along its two ends and the rows above and below, not pixel by pixel."""
    root = -1
    if x0 > 0 and parent[p0 - 1] >= 0:
        root = _link(p0 - 1, root, parent, box, size, first, border)
    if x1 < w - 1 and parent[p0 + x1 - x0 + 1] >= 0:
        root = _link(p0 + x1 - x0 + 1, root, parent, box, size, first, border)
    reach = 1 if diagonal else 0
    lo, hi = max(x0 - reach, 0), min(x1 + reach, w - 1)
    for yy in (y - 1, y + 1):
        if 0 <= yy < h:
            for q in range(yy * w + lo, yy * w + hi + 1):
                if parent[q] >= 0:
                    root = _link(q, root, parent, box, size, first, border)
    # cv2's 8-connected labelling (Spaghetti) scans 2x2 blocks in raster order and a
    # block holds at most one component: labels follow each one's first block.
    block = (y >> 1) * ((w + 1) >> 1) + (x0 >> 1)
    edge = y == 0 or y == h - 1 or x0 == 0 or x1 == w - 1
    if root == -1:  # a component of its own
        root = p0
        box[0, p0], box[1, p0], box[2, p0], box[3, p0] = x0, y, x1, y
        size[p0], first[p0], border[p0] = 0, block, edge
    else:
        box[0, root] = min(box[0, root], x0)
        box[1, root] = min(box[1, root], y)
        box[2, root] = max(box[2, root], x1)
        box[3, root] = max(box[3, root], y)
        first[root] = min(first[root], block)
        border[root] = border[root] or edge
    size[root] += x1 - x0 + 1
    for p in range(p0, p0 + x1 - x0 + 1):
        parent[p] = root
    return root


@nb.njit(cache=True, inline="always")
def _run_end(order, ys, k: int, end: int) -> int:
    """One past the last entry of the run starting at ``k`` (consecutive pixels of
    one row within a band)."""
    j = k + 1
    while j < end and order[j] == order[j - 1] + 1 and ys[j] == ys[k]:
        j += 1
    return j


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


@nb.njit(cache=True)
def _band_order(band: np.ndarray, w: int, nbands: int):
    """Pixels grouped by band (counting sort, O(n)), raster order inside a band so
    that neighbours are near in memory, with their x and y (no division later);
    ``start[b]:start[b + 1]`` is band b."""
    start = np.zeros(nbands + 1, np.int64)
    for b in band:
        start[b + 1] += 1
    for b in range(nbands):
        start[b + 1] += start[b]
    order = np.empty(band.size, np.int32)
    xs, ys = np.empty(band.size, np.int32), np.empty(band.size, np.int32)
    fill = start[:-1].copy()
    for i in range(band.size):
        k = fill[band[i]]
        order[k], ys[k], xs[k] = i, i // w, i % w
        fill[band[i]] += 1
    return order, xs, ys, start


@nb.njit(cache=True)
def _scan(roots, nroots, parent, box, border, w, h, gt, hole) -> tuple[float, int]:
    """Best IoU over the current components' contour boxes (outer borders, or with
    ``hole`` the holes: components off the border, their border one pixel around);
    compacts ``roots`` to the components still alive and returns their count."""
    best, kept = -1.0, 0
    grow = 1 if hole else 0
    for j in range(nroots):
        r = roots[j]
        if parent[r] != r or (hole and border[r]):
            continue  # merged away, or open to the border (never a hole again)
        roots[kept] = r
        kept += 1
        x1, y1 = min(box[2, r] + 1 + grow, w - 1), min(box[3, r] + 1 + grow, h - 1)
        best = max(best, _iou(box[0, r] - grow, box[1, r] - grow, x1, y1, gt))
    return best, kept


@nb.njit(cache=True)
def _contour_pass(order, xs, ys, start, w, h, gt, hole, wanted) -> np.ndarray:
    """Best IoU at each of the m distinct levels (band b: values above b levels).
    Outer: 8-connected components of the bands above the level, bands added from the
    top down; boxes (x0, y0, x1 + 1, y1 + 1) clipped to W-1 / H-1, (0, 0, 0, 0) when
    nothing is above. Holes (``hole``): 4-connected components of the bands at or
    below the level off the image border, added from the bottom up; cv2 traces a
    hole's border along the pixels around it, so (x0 - 1, y0 - 1, x1 + 2, y1 + 2)
    clipped; -1 where there is none. Levels not ``wanted`` are not scored (-1), and
    the pass ends after the last wanted one."""
    m = start.size - 2
    parent, box, size, first, border = _new_forest(order.size)
    roots = np.empty(order.size, np.int32)
    nroots = 0
    out = np.full(m, -1.0)
    count = np.zeros(m, np.int64)  # components (outer) or holes at each level
    last = np.flatnonzero(wanted)
    steps = 0 if last.size == 0 else (last[-1] + 1 if hole else m - last[0])
    for step in range(steps):
        level = step if hole else m - 1 - step
        band = level if hole else level + 1  # the band that joins at this level
        k = start[band]
        while k < start[band + 1]:
            j = _run_end(order, ys, k, start[band + 1])
            x1 = xs[k] + j - k - 1
            r = _add_run(
                order[k], xs[k], x1, ys[k], w, h, not hole, parent, box, size, first, border
            )
            if r == order[k]:  # a new component: one more root to score
                roots[nroots] = r
                nroots += 1
            k = j
        if not wanted[level]:
            continue
        if nroots == 0 and not hole:
            out[level] = _iou(0, 0, 0, 0, gt)
            continue
        out[level], nroots = _scan(roots, nroots, parent, box, border, w, h, gt, hole)
        count[level] = nroots
    return out, count


@nb.njit(cache=True)
def _euler(band: np.ndarray, w: int, h: int, m: int) -> np.ndarray:
    """Euler number (8-connected components minus 4-connected holes) of ``band >
    level`` at each of the m levels, from the 2x2 quads (Gray's bit-quad counts:
    4E = Q1 - Q3 - 2 QD), outside the map counting as background. Each quad's
    pattern changes only where one of its four pixels joins, so a difference array
    over levels sums them in O(HW)."""
    diff = np.zeros(m + 1, np.int64)
    for i in range(h + 1):
        for j in range(w + 1):
            a = band[(i - 1) * w + j - 1] if i > 0 and j > 0 else 0
            b = band[(i - 1) * w + j] if i > 0 and j < w else 0
            c = band[i * w + j - 1] if i < h and j > 0 else 0
            d = band[i * w + j] if i < h and j < w else 0
            hi1, lo1 = max(a, d), min(a, d)  # diagonal pair a-d
            hi2, lo2 = max(b, c), min(b, c)  # diagonal pair b-c
            s0, s3 = max(hi1, hi2), min(lo1, lo2)
            s1 = max(min(hi1, hi2), max(lo1, lo2))  # the second largest
            s2 = a + b + c + d - s0 - s1 - s3
            # One pixel on for levels s1 .. s0-1, three for s3 .. s2-1; two for
            # s2 .. s1-1 count only as a diagonal pair.
            diff[s1] += 1
            diff[s0] -= 1
            diff[s3] -= 1
            diff[s2] += 1
            if lo1 > hi2 or lo2 > hi1:
                diff[s2] -= 2
                diff[s1] += 2
    e4 = np.cumsum(diff[:m])
    return e4 // 4


@nb.njit(cache=True)
def _contour_best(band: np.ndarray, w: int, h: int, m: int, gt: np.ndarray) -> np.ndarray:
    """(m,) best IoU at each distinct level over every box cv2's RETR_TREE contours
    give (outer and hole borders); ``band``: how many levels lie below each pixel."""
    order, xs, ys, start = _band_order(band, w, m + 1)
    every = np.ones(m, np.bool_)
    best, components = _contour_pass(order, xs, ys, start, w, h, gt, False, every)
    # Holes = components - Euler number: their pass scores only the levels that have
    # some and stops after the last (none at all: no pass).
    holes = components != _euler(band, w, h, m)
    if holes.any():
        hole_best = _contour_pass(order, xs, ys, start, w, h, gt, True, holes)[0]
        best = np.maximum(best, hole_best)
    return best


@nb.njit(cache=True)
def _largest_boxes(band: np.ndarray, w: int, h: int, t: int) -> np.ndarray:
    """(T, 4) box of the largest 8-connected component of ``m > t`` for ascending
    thresholds: (x0, y0, x1 + 1, y1 + 1); no pixel above t -> the whole frame
    (0, 0, W, H). By pixel count; a tie goes to the component cv2's labelling numbers
    first (the one whose first 2x2 block comes first in raster order). The SAT/TS-CAM
    authors' rule. ``band``: how many of the t thresholds lie below each pixel."""
    order, xs, ys, start = _band_order(band, w, t + 1)
    parent, box, size, first, border = _new_forest(order.size)
    out = np.empty((t, 4), np.int64)
    best, best_size, best_first = -1, 0, 0
    for i in range(t - 1, -1, -1):
        k = start[i + 1]
        while k < start[i + 2]:  # the pixels above threshold i from here on
            j = _run_end(order, ys, k, start[i + 2])
            x1 = xs[k] + j - k - 1
            r = _add_run(order[k], xs[k], x1, ys[k], w, h, True, parent, box, size, first, border)
            if size[r] > best_size or (size[r] == best_size and first[r] < best_first):
                best, best_size, best_first = r, size[r], first[r]
            k = j
        if best < 0:
            out[i, 0], out[i, 1], out[i, 2], out[i, 3] = 0, 0, w, h
        else:
            r = _root(parent, best)
            out[i, 0], out[i, 1] = box[0, r], box[1, r]
            out[i, 2], out[i, 3] = box[2, r] + 1, box[3, r] + 1
    return out


def largest_component_boxes(m: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """SAT/TS-CAM authors' rule on an (authors-normalised) map: (T, 4) boxes, see
    ``_largest_boxes``. Float32 maps are compared in float64, as numpy compares them
    with float64 thresholds."""
    h, w = m.shape
    # A pixel's band: how many thresholds lie below its value (exact float compares).
    band = np.searchsorted(thresholds, np.asarray(m, np.float64).ravel(), side="left")
    return _largest_boxes(band, w, h, len(thresholds))


def best_contour_iou(m01: np.ndarray, gt: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """WSOL benchmark's MaxBoxAccV2 rule: (T,) best IoU over every contour box and
    every GT box at each threshold. The map becomes uint8 from float64
    (``(m * 255)``, as the benchmark's loader hands it over) and is cut at
    ``int(t * max)``, strictly above."""
    gray = (np.asarray(m01, np.float64) * 255).astype(np.uint8)
    levels = (np.asarray(thresholds, np.float64) * int(gray.max())).astype(np.int64)
    distinct = np.unique(levels)
    band = np.searchsorted(distinct, np.arange(256), side="left")[gray.ravel()]
    gt = np.ascontiguousarray(gt, np.float64).reshape(-1, 4)
    best = _contour_best(band, gray.shape[1], gray.shape[0], distinct.size, gt)
    return best[np.searchsorted(distinct, levels)]


def warm_up() -> float:
    """Compile (or load from numba's cache) both rules' kernels on a tiny map, so the
    first scored batch does not pay for it; the seconds it took."""
    import time

    t0 = time.perf_counter()
    tiny = np.linspace(0.0, 1.0, 16).reshape(4, 4)
    thresholds = np.arange(0.0, 1.0, 0.5)
    largest_component_boxes(tiny, thresholds)
    best_contour_iou(tiny, np.array([[0.0, 0.0, 2.0, 2.0]]), thresholds)
    return time.perf_counter() - t0
