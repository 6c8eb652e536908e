"""The one-pass boxes (evaluation/componenttree.py) against cv2 run per threshold, the
way the references' code runs it, on thousands of maps of every awkward kind: every
map, every threshold, both rules, exactly equal."""

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from wsolbench.evaluation.boxes import BENCHMARK_THRESHOLDS, THRESHOLDS, box_iou, normalize_authors
from wsolbench.evaluation.componenttree import best_contour_iou, largest_component_boxes


def oracle_contour_boxes(
    m01: np.ndarray, thresholds: np.ndarray = BENCHMARK_THRESHOLDS
) -> tuple[list[np.ndarray], list]:
    """The benchmark's rule spelled out: uint8 map, cv2.threshold at int(t * max),
    every RETR_TREE contour's boundingRect (x1, y1 clipped); the boxes per threshold
    (traced once per map, scored against every GT below), and the last contours."""
    h, w = m01.shape
    gray = (np.asarray(m01, np.float64) * 255).astype(np.uint8)
    out = []
    for t in thresholds:
        _, binary = cv2.threshold(gray, int(t * gray.max()), 255, cv2.THRESH_BINARY)
        contours = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
        boxes = [[0, 0, 0, 0]]
        if contours:
            boxes = []
            for c in contours:
                x, y, bw, bh = cv2.boundingRect(c)
                boxes.append([x, y, min(x + bw, w - 1), min(y + bh, h - 1)])
        out.append(np.array(boxes))
    return out, contours


def oracle_largest(m: np.ndarray) -> np.ndarray:
    """The authors' rule spelled out: whole-image 8-connected labels at every
    threshold, the first label of largest area, its stats box."""
    h, w = m.shape
    out = []
    for t in THRESHOLDS:
        n, _, stats, _ = cv2.connectedComponentsWithStats((m > t).astype(np.uint8), connectivity=8)
        if n == 1:
            out.append([0, 0, w, h])
            continue
        x, y, bw, bh = stats[1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA])), :4]
        out.append([x, y, x + bw, y + bh])
    return np.array(out)


def rings(rng, h, w):
    """Concentric bands of alternating value: rings with holes inside holes."""
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx = rng.uniform(0, h), rng.uniform(0, w)
    d = np.hypot(yy - cy, xx - cx) / rng.uniform(1.5, 4)
    return (np.floor(d) % 2) * (1 + np.floor(d) / 10) + rng.random((h, w)) * 0.01


def blobs(rng, h, w):
    yy, xx = np.mgrid[0:h, 0:w]
    m = np.zeros((h, w))
    for _ in range(rng.integers(1, 5)):
        cy, cx, s = rng.uniform(-2, h + 2), rng.uniform(-2, w + 2), rng.uniform(1, 6)
        m += rng.uniform(0.3, 1) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
    return m


def tied_squares(rng, h, w):
    """Equal squares of equal value, so components tie on area at every level."""
    m = np.zeros((h, w))
    side = int(rng.integers(1, 4))
    for _ in range(rng.integers(2, 7)):
        y, x = rng.integers(0, h), rng.integers(0, w)
        m[y : y + side, x : x + side] = 1.0
    return m


def border_rects(rng, h, w):
    m = rng.random((h, w)) * 0.1
    for _ in range(rng.integers(1, 4)):
        y0, x0 = rng.integers(-3, h), rng.integers(-3, w)
        m[max(y0, 0) : y0 + rng.integers(1, 9), max(x0, 0) : x0 + rng.integers(1, 9)] += 0.5
    return m


FAMILIES = {
    "noise": lambda rng, h, w: rng.random((h, w)),
    "plateaus": lambda rng, h, w: rng.integers(0, rng.integers(2, 7), (h, w)).astype(float),
    "checker": lambda rng, h, w: (np.indices((h, w)).sum(0) % 2) * rng.random((h, w)),
    "rings": rings,
    "blobs": blobs,
    "tied_squares": tied_squares,
    "border_rects": border_rects,
    "constant": lambda rng, h, w: np.full((h, w), rng.random()),
}


def random_gt(rng, h, w) -> np.ndarray:
    x0, y0 = rng.integers(0, w), rng.integers(0, h)
    return np.array([[x0, y0, rng.integers(x0, w), rng.integers(y0, h)]], float)


def check(m: np.ndarray, rng) -> None:
    h, w = m.shape
    m01 = m.astype(np.float32)
    lo, hi = m01.min(), m01.max()
    m01 = (m01 - lo) / (hi - lo) if hi > lo else np.zeros_like(m01)
    # Random GT boxes, and each box cv2 finds at one threshold as a GT of its own:
    # IoU 1 there means our set holds exactly that box.
    gts = [random_gt(rng, h, w) for _ in range(2)]
    per_threshold, contours = oracle_contour_boxes(m01)
    for c in contours[:4]:
        x, y, bw, bh = cv2.boundingRect(c)
        gts.append(np.array([[x, y, min(x + bw, w - 1), min(y + bh, h - 1)]], float))
    # Every threshold's boxes scored in one call, then the best per threshold.
    flat, starts = np.concatenate(per_threshold), np.cumsum([0] + [len(b) for b in per_threshold])
    for gt in gts:
        expected = np.maximum.reduceat(box_iou(flat, gt).max(axis=1), starts[:-1])
        np.testing.assert_array_equal(best_contour_iou(m01, gt, BENCHMARK_THRESHOLDS), expected)
    authors = normalize_authors(m.astype(np.float32))
    np.testing.assert_array_equal(
        largest_component_boxes(authors, THRESHOLDS), oracle_largest(authors)
    )


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_equal_to_cv2_per_threshold(family):
    rng = np.random.default_rng(sorted(FAMILIES).index(family))
    for _ in range(125):
        h, w = (int(v) for v in rng.integers(1, 33, 2))
        check(FAMILIES[family](rng, h, w), rng)


def test_equal_on_full_size_and_odd_maps():
    rng = np.random.default_rng(99)
    for h, w in ((224, 224), (224, 224), (37, 211), (1, 1), (1, 50), (50, 1), (2, 2)):
        check(blobs(rng, h, w), rng)
    grid = rng.random((14, 14)).astype(np.float32)  # a ViT grid upsampled, as scored
    check(cv2.resize(grid, (224, 224), interpolation=cv2.INTER_CUBIC), rng)


@settings(max_examples=300, deadline=None)
@given(
    arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 12)), elements=st.integers(0, 3))
)
def test_equal_on_any_small_plateau_map(levels):
    check(levels.astype(float), np.random.default_rng(int(levels.sum())))


WARM_THEN_SCORE = """
import numba, numpy as np
from wsolbench.evaluation import componenttree as ct, levelparts, pathlevels
ct.warm_up("contour")
kernels = {
    f for mod in (ct, levelparts, pathlevels) for f in vars(mod).values()
    if isinstance(f, numba.core.registry.CPUDispatcher)
}
before = {f.__name__: len(f.signatures) for f in kernels}
rng = np.random.default_rng(0)
for m in (rng.random((40, 40)), np.pad(np.ones((9, 9)), 3) - np.pad(np.ones((3, 3)), 6)):
    for interval in (0.01, 0.001):
        for gt in ([[0.0, 0.0, 39.0, 39.0]], [[4.0, 4.0, 10.0, 10.0]], [[6.0, 6.0, 8.0, 8.0]]):
            thresholds = np.arange(0, 1, interval)
            ct.best_contour_iou(m.astype(np.float32), np.array(gt), thresholds)
            ct.best_contour_iou(m, np.array(gt), thresholds)
after = {f.__name__: len(f.signatures) for f in kernels}
print(sorted(k for k in after if after[k] != before[k]))
"""


def test_warm_up_compiles_every_step_a_map_can_reach():
    """Maps with holes and without, float32 and float64, both intervals: nothing new
    to compile after ``warm_up`` (else the first scored batch pays for it, timed)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", WARM_THEN_SCORE], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
