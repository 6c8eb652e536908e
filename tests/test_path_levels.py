"""The path levels that spare the union-finds most pixels (componenttree._path_levels),
by hand and against their definition computed with cv2's labelling, level by level:
to the peak, the highest level L at which the pixel and the map's first maximum lie in
one 8-connected component of ``band >= L``; to the border, the lowest level L at which
the pixel's 4-connected component of ``band <= L`` touches the image border."""

import cv2
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from wsolbench.evaluation.pathlevels import _path_levels


def by_definition(band: np.ndarray, to_peak: bool) -> np.ndarray:
    top = int(band.max())
    peak = np.unravel_index(np.argmax(band), band.shape)  # argmax: the first, raster order
    out = np.full(band.shape, -1 if to_peak else top + 1)
    for level in range(top + 1):
        mask = (band >= level) if to_peak else (band <= level)
        _, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8 if to_peak else 4)
        if to_peak:
            out[mask & (labels == labels[peak])] = level  # rising: the last is the highest
        else:
            edge = np.unique(np.r_[labels[0], labels[-1], labels[:, 0], labels[:, -1]])
            reached = mask & np.isin(labels, edge[edge > 0]) & (out > level)
            out[reached] = level  # rising: the first is the lowest
    return out


def test_a_ring_and_two_peaks_by_hand():
    ring = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]], np.uint8)
    # the centre reaches the border only over a 1; the peak only from its own 0
    assert _path_levels(ring, 3, False).tolist() == [[1, 1, 1], [1, 1, 1], [1, 1, 1]]
    assert _path_levels(ring, 3, True).tolist() == [[1, 1, 1], [1, 0, 1], [1, 1, 1]]
    two = np.array([[3, 0, 2]], np.uint8)
    assert _path_levels(two, 5, True).tolist() == [[3, 0, 0]]  # the 2 joins the 3 at 0
    assert _path_levels(two, 5, False).tolist() == [[3, 0, 2]]  # all on the border
    diagonal = np.array([[2, 0], [0, 2]], np.uint8)  # 8-connected to the peak, at 2
    assert _path_levels(diagonal, 4, True).tolist() == [[2, 0], [0, 2]]
    basin = np.array([[3, 3, 3, 3], [3, 0, 1, 3], [3, 3, 2, 3], [3, 3, 3, 3]], np.uint8)
    # a 4-connected basin: out over its lowest wall, the 3s, so at 3 for all of it
    assert _path_levels(basin, 5, False)[1:3, 1:3].tolist() == [[3, 3], [3, 3]]


@settings(max_examples=300, deadline=None)
@given(
    arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 12)), elements=st.integers(0, 6)),
    st.booleans(),
)
def test_equal_to_the_definition_on_drawn_maps(band, to_peak):
    assert np.array_equal(_path_levels(band, 8, to_peak), by_definition(band, to_peak))


def test_equal_to_the_definition_on_noisy_full_size_maps():
    rng = np.random.default_rng(3)
    for _ in range(4):
        coarse = rng.random((14, 14))
        band = cv2.resize(coarse, (224, 224), interpolation=cv2.INTER_LINEAR)
        band = (band * 40).astype(np.uint8)
        for to_peak in (True, False):
            assert np.array_equal(_path_levels(band, 42, to_peak), by_definition(band, to_peak))


@settings(max_examples=20, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 9), st.integers(1, 9))), st.booleans())
def test_bands_over_the_whole_uint8_range(band, to_peak):
    # the kernels work in uint8: 255 levels (interval 0.001) must neither wrap nor clip
    assert np.array_equal(_path_levels(band, 255, to_peak), by_definition(band, to_peak))


@settings(max_examples=150, deadline=None)
@given(
    arrays(np.uint8, st.tuples(st.integers(1, 16), st.integers(1, 16)), elements=st.integers(0, 6)),
    st.integers(1, 3),
)
def test_fewer_sweeps_bound_the_border_levels_from_above(band, pairs):
    """Stopped after ``pairs`` pairs of sweeps, the border's levels are at least the
    definition's and at least the bands; the box passes rely on both."""
    exact = by_definition(band, False)
    bound = _path_levels(band, 8, False, pairs).astype(int)
    assert (bound >= exact).all() and (bound >= band).all()


def test_one_pair_of_sweeps_misses_a_winding_path():
    # the way out of the centre winds down, right, up: a raster sweep pair cannot
    # follow it, so one pair leaves the centre above its level
    band = np.array(
        [
            [9, 9, 9, 9, 9, 9, 9],
            [9, 0, 9, 0, 0, 0, 0],
            [9, 0, 9, 0, 9, 9, 9],
            [9, 0, 0, 0, 9, 9, 9],
            [9, 9, 9, 9, 9, 9, 9],
        ],
        np.uint8,
    )
    assert by_definition(band, False)[1, 1] == 0
    assert _path_levels(band, 9, False)[1, 1] == 0
    assert _path_levels(band, 9, False, 1)[1, 1] > 0
