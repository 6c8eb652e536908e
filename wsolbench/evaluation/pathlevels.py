"""Each pixel's path level to the map's maximum or to the image border, by a
reconstruction by dilation in raster sweeps (uint8, rows padded to whole words): the
levels that let the box passes in ``componenttree`` leave most pixels out. Stopped
after fewer sweeps, the border's levels are a bound from above."""

from __future__ import annotations

import numba as nb
import numpy as np
from numba.cpython.unsafe.numbers import leading_zeros, trailing_zeros


@nb.njit(cache=True, inline="always")
def _first_last(words, nw):
    """Byte indices of the first and last nonzero byte of ``nw`` words (-1: none)."""
    lo, hi = -1, -1
    for k in range(nw):
        if words[k]:
            lo = k * 8 + (trailing_zeros(words[k]) >> 3)
            break
    for k in range(nw - 1, -1, -1):
        if words[k]:
            hi = k * 8 + 7 - (leading_zeros(words[k]) >> 3)
            break
    return lo, hi


@nb.njit(cache=True, inline="always")
def _sweep_row(f, g, seed, sw, width, w, i, k, diagonal, forward) -> bool:
    """One row ``i`` of a raster sweep of a reconstruction by dilation (``f <= g``,
    uint8, rows of ``width`` bytes padded with 0; ``sw``: the word view of the scratch
    row ``seed``): from row ``k`` (the one above or below) and the row's own neighbour
    on the left (``forward``) or right; whether it changed. First what the rows give,
    in place, in a loop that vectorises; the neighbour along the row can add more only
    after a seed, a pixel where it carries more than the rows give (1-5 % of the pixels
    on ViT-like maps), so the serial chain runs from the first seed and stops past the
    last once it carries nothing more. Every loop indexes slices from 0: an index numba
    cannot prove non-negative gets a wrap-around select that stops vectorisation."""
    near, cur = f[k * width : (k + 1) * width], f[i * width : (i + 1) * width]
    cap = g[i * width + 1 : i * width + 1 + w]
    reach, back = (1 if diagonal else 0), (-1 if forward else 1)
    n0, n1, n2 = near[1 - reach : 1 - reach + w], near[1 : 1 + w], near[1 + reach : 1 + reach + w]
    c1 = cur[1 : 1 + w]
    changed = False
    for j in range(w):
        v = min(max(max(n0[j], n1[j]), max(n2[j], c1[j])), cap[j])
        changed |= v != c1[j]
        c1[j] = v
    along, s1 = cur[1 + back : 1 + back + w], seed[1 : 1 + w]
    for j in range(w):
        s1[j] = min(along[j], cap[j]) > c1[j]
    lo, hi = _first_last(sw, width >> 3)
    if lo < 0:
        return changed
    if forward:
        for j in range(lo, w + 1):
            r = min(cur[j - 1], cap[j - 1])
            if r > cur[j]:
                cur[j], changed = r, True
            elif j > hi:
                break
    else:
        for j in range(hi, 0, -1):
            r = min(cur[j + 1], cap[j - 1])
            if r > cur[j]:
                cur[j], changed = r, True
            elif j < lo:
                break
    return changed


@nb.njit(cache=True)
def _reconstruct(g, f, width, height, w, diagonal, pairs) -> None:
    """Reconstruction by dilation of ``f`` under ``g`` in place: raster sweeps down and
    up until none changes a pixel (2-4 pairs on these maps), or ``pairs`` pairs (then
    ``f`` is at most the reconstruction); a row is swept again only when it or the row
    it reads from changed since its last sweep in that direction."""
    seed = np.zeros(width, np.uint8)
    sw = seed.view(np.uint64)
    changed_at = np.zeros(height, np.int64)  # the marker is on every row: sweep all
    done = np.full((2, height), -1, np.int64)
    s = 0
    while True:
        moved = False
        s += 1
        for i in range(1, height - 1):
            if changed_at[i - 1] > done[0, i] or changed_at[i] > done[0, i]:
                done[0, i] = s
                if _sweep_row(f, g, seed, sw, width, w, i, i - 1, diagonal, True):
                    changed_at[i], moved = s, True
        s += 1
        for i in range(height - 2, 0, -1):
            if changed_at[i + 1] > done[1, i] or changed_at[i] > done[1, i]:
                done[1, i] = s
                if _sweep_row(f, g, seed, sw, width, w, i, i + 1, diagonal, False):
                    changed_at[i], moved = s, True
        if not moved or s == 2 * pairs:
            return


@nb.njit(cache=True, inline="always")
def _first_maximum(band: np.ndarray) -> tuple[int, int]:
    """Row and column of the first maximum in raster order: each row's maximum in a
    loop that vectorises, then the first row that holds the highest (np.argmax
    compares pixel by pixel, four times as long)."""
    h, w = band.shape
    best, at = band[0, 0], 0
    for i in range(h):
        top = band[i, 0]
        for j in range(w):
            top = max(top, band[i, j])
        if top > best:
            best, at = top, i
    j = 0
    while band[at, j] != best:
        j += 1
    return at, j


@nb.njit(cache=True, inline="always")
def _straight(g, f, width, w, start, stop, step, run) -> None:
    """The marker raised along straight vertical paths: rows ``start``, ``start +
    step``, ... (not ``stop``) in turn, ``run`` the running minimum of ``g`` down (or
    up) them, column by column in a loop that vectorises."""
    for k in range(start, stop, step):
        gk, fk = g[k * width + 1 : k * width + 1 + w], f[k * width + 1 : k * width + 1 + w]
        for x in range(w):
            run[x] = min(run[x], gk[x])
            fk[x] = max(fk[x], run[x])


@nb.njit(cache=True)
def _path_marker(band: np.ndarray, top: int, to_peak: bool):
    """The padded uint8 mask and marker of ``_path_levels``' reconstruction, flat, and
    their row width. The marker holds each pixel's best straight path already (along
    the peak's row, then up or down; or straight in from the top or the bottom
    border): the sweeps then have less to carry along the rows, serially (a fifth
    less time). Plain loops: numba's slice assignments took seconds more to compile."""
    h, w = band.shape
    width, height = (w + 9) & ~7, h + 2  # rows of whole words, padded with 0
    g = np.zeros(height * width, np.uint8)
    f = np.zeros(height * width, np.uint8)
    for i in range(h):  # one direction per loop, so each vectorises
        row = g[(i + 1) * width + 1 : (i + 1) * width + 1 + w]
        if to_peak:
            for j in range(w):
                row[j] = band[i, j]
        else:
            # the border's minimax is a maximin of the bands turned upside down
            for j in range(w):
                row[j] = top - band[i, j]
    if to_peak:
        i, j = _first_maximum(band)
        i += 1
        row, out = g[i * width + 1 : i * width + 1 + w], f[i * width + 1 : i * width + 1 + w]
        r = row[j]
        for x in range(j, w):
            r = min(r, row[x])
            out[x] = r
        r = row[j]
        for x in range(j, -1, -1):
            r = min(r, row[x])
            out[x] = r
        _straight(g, f, width, w, i + 1, h + 1, 1, out.copy())
        _straight(g, f, width, w, i - 1, 0, -1, out.copy())
        return g, f, width
    for i in range(1, h + 1):  # the border pixels are their own marker
        for j in (1, w):
            f[i * width + j] = g[i * width + j]
    for i in (1, h):
        for j in range(1, w + 1):
            f[i * width + j] = g[i * width + j]
    _straight(g, f, width, w, 2, h + 1, 1, g[width + 1 : width + 1 + w].copy())
    _straight(g, f, width, w, h - 1, 0, -1, g[h * width + 1 : h * width + 1 + w].copy())
    return g, f, width


@nb.njit(cache=True)
def _path_unpad(f: np.ndarray, h: int, w: int, width: int, top: int, to_peak: bool):
    """(h, w) uint8 path levels from the reconstruction's padded rows."""
    out = np.empty((h, w), np.uint8)
    for i in range(h):
        row = f[(i + 1) * width + 1 : (i + 1) * width + 1 + w]
        if to_peak:  # a loop: numba's row assignment took four times as long
            for j in range(w):
                out[i, j] = row[j]
        else:
            for j in range(w):
                out[i, j] = top - row[j]
    return out


def _path_levels(band: np.ndarray, top: int, to_peak: bool, pairs: int = 256) -> np.ndarray:
    """Per pixel, with ``to_peak``: the highest level over 8-paths to the map's first
    maximum (raster order) of the lowest band on the path, i.e. the lowest band at
    which the pixel is in that maximum's component; else the lowest level over 4-paths
    to the image border of the highest band on the path, the band at which the pixel's
    4-connected component below it reaches the border. ``top``: at least every band,
    at most 255 (uint8 inside: 32 pixels a vector step); uint8 out. After ``pairs``
    pairs of sweeps, the border's levels are at least these (a bound). Three compiled
    steps called from Python: compiled as one, numba optimised the reconstruction
    again inside it (6 s more on a fresh clone)."""
    g, f, width = _path_marker(band, top, to_peak)
    h, w = band.shape
    _reconstruct(g, f, width, h + 2, w, to_peak, pairs)
    return _path_unpad(f, h, w, width, top, to_peak)
