"""The bounds that tell the box passes which levels they need (componenttree._parts,
_differ_bits), against their definition: every component of the pixels with
``low <= level < high``, labelled by cv2 level by level, lies inside one part's box and
that part's span of levels holds the level. By hand on small cases, and on random
images of every connectivity."""

import cv2
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from wsolbench.evaluation.levelparts import _differ_bits, _parts


def packed(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """The bitset by numpy: one bit per pixel, raster order, little-endian words."""
    bits = np.packbits((low != high).ravel(), bitorder="little")
    return np.pad(bits, (0, (-bits.size) % 8)).view(np.uint64)


def alive_parts(low, high, diagonal):
    box, lo, hi = _parts(low, high, _differ_bits(low, high), diagonal)
    return [(tuple(b), int(a), int(z)) for b, a, z in zip(box, lo, hi, strict=True) if b[2] >= 0]


def test_two_parts_by_hand():
    low = np.zeros((3, 5), np.uint8)
    high = np.array([[2, 0, 0, 0, 0], [0, 1, 0, 0, 4], [0, 0, 0, 0, 4]], np.uint8)
    # diagonally the first two pixels are one part: levels 0..1 (high 2 and 1)
    assert sorted(alive_parts(low, high, True)) == [((0, 0, 1, 1), 0, 2), ((4, 1, 4, 2), 0, 4)]
    # 4-connected they are two
    assert sorted(alive_parts(low, high, False)) == [
        ((0, 0, 0, 0), 0, 2),
        ((1, 1, 1, 1), 0, 1),
        ((4, 1, 4, 2), 0, 4),
    ]
    assert alive_parts(high, high, True) == []  # nothing differs: no part


def test_spans_take_the_lowest_low_and_the_highest_high():
    low = np.array([[0, 3, 1, 5, 5]], np.uint8)
    high = np.array([[2, 4, 6, 5, 7]], np.uint8)
    assert alive_parts(low, high, True) == [((0, 0, 2, 0), 0, 6), ((4, 0, 4, 0), 5, 7)]


@st.composite
def low_high(draw):
    h, w = draw(st.integers(1, 20)), draw(st.integers(1, 70))
    low = draw(arrays(np.uint8, (h, w), elements=st.integers(0, 6)))
    extra = draw(arrays(np.uint8, (h, w), elements=st.sampled_from([0, 0, 0, 1, 2, 5])))
    return low, low + extra


@settings(max_examples=150, deadline=None)
@given(low_high())
def test_the_bitset_is_numpys_packbits(images):
    low, high = images
    np.testing.assert_array_equal(_differ_bits(low, high), packed(low, high))


@settings(max_examples=150, deadline=None)
@given(low_high(), st.booleans())
def test_the_parts_are_cv2s_components_of_the_differing_pixels(images, diagonal):
    low, high = images
    mask = (low < high).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8 if diagonal else 4)
    expected = []
    for k in range(1, n):
        x, y, bw, bh, _ = stats[k]
        inside = labels == k
        expected.append(
            ((x, y, x + bw - 1, y + bh - 1), int(low[inside].min()), int(high[inside].max()))
        )
    assert sorted(alive_parts(low, high, diagonal)) == sorted(expected)


@settings(max_examples=100, deadline=None)
@given(low_high(), st.booleans())
def test_every_component_at_every_level_lies_in_a_part(images, diagonal):
    """The property the passes rely on, level by level."""
    low, high = images
    parts = alive_parts(low, high, diagonal)
    for level in range(int(high.max()) + 1):
        mask = ((low <= level) & (level < high)).astype(np.uint8)
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8 if diagonal else 4)
        for x, y, bw, bh, _ in stats[1:n]:
            assert any(
                bx0 <= x and by0 <= y and x + bw - 1 <= bx1 and y + bh - 1 <= by1 and a <= level < z
                for (bx0, by0, bx1, by1), a, z in parts
            ), (level, (x, y, bw, bh))
