"""TS-CAM's own evaluation (vasgaowei/TS-CAM lib/cams_deit.py, lib/datasets/*.py), each
rule on a case worked by hand from its definition."""

import numpy as np
import pytest

from wsolbench.data.imaging import tscam_boxes
from wsolbench.evaluation.metrics import MapBatch
from wsolbench.evaluation.tscam_rule import TSCAMBoxAccuracy, tscam_box


def test_cub_gt_boxes_truncate_xywh_first():
    """CUB 'x y w h' = 10.6 20.0 100.7 50.2 in a 300x200 image: int each -> 10 20 100 50,
    so x1 = 110, y1 = 70; then int(max(10/300*224, 0)) = 7, int(20/200*224) = 22,
    int(min(110/300*224, 223)) = 82, int(70/200*224) = 78. Without the truncation
    (ILSVRC's loader) x1 = 111.3 -> 83 and y1 = 70.2 -> 78."""
    box = np.array([[10.6, 20.0, 10.6 + 100.7, 20.0 + 50.2]])
    assert tscam_boxes(box, 300, 200, int_xywh=True).tolist() == [[7, 22, 82, 78]]
    assert tscam_boxes(box, 300, 200, int_xywh=False).tolist() == [[7, 22, 83, 78]]


def test_gt_box_at_the_image_edge_is_clipped_to_223():
    """A box to the right edge: 300/300*224 = 224 -> min(224, 223) = 223; the
    benchmark's resize frame would give 224 (no clip)."""
    box = np.array([[0.0, 0.0, 300.0, 200.0]])
    assert tscam_boxes(box, 300, 200, int_xywh=True).tolist() == [[0, 0, 223, 223]]


def blobs() -> np.ndarray:
    """A 16x16 map: a 3x3 square of 1.0 at rows/cols 2-4 (9 pixels, polygon area 4)
    and a 1x12 line of 0.9 on row 10 (12 pixels, polygon area 0)."""
    m = np.zeros((16, 16), np.float32)
    m[2:5, 2:5] = 1.0
    m[10, 2:14] = 0.9
    return m


def test_largest_contour_area_not_the_largest_component():
    """The line has more pixels, so the SAT rule's largest component would box it;
    TS-CAM's cv2.contourArea keeps the square: boundingRect (2, 2, 3, 3) -> [2, 2, 5, 5]."""
    assert tscam_box(blobs(), 0.1, (16, 16)).tolist() == [2, 2, 5, 5]


def test_cut_is_int_thr_times_uint8_max_and_strict():
    """The line alone is min-max scaled to 255: at thr 0.89 (cut 226) it is kept. With
    one pixel of 1.0 beside it the line is int(0.9 * 255) = 229 and the cut at thr 0.9
    is int(0.9 * 255) = 229: the line is not above it, only the pixel (5, 5) is."""
    m = blobs()
    m[2:5, 2:5] = 0.0  # only the line is left
    assert tscam_box(m, 0.89, (16, 16)).tolist() == [2, 10, 14, 11]
    m[5, 5] = 1.0
    assert tscam_box(m, 0.9, (16, 16)).tolist() == [5, 5, 6, 6]


def test_no_contour_is_the_unit_box():
    assert tscam_box(np.zeros((8, 8), np.float32), 0.1, (8, 8)).tolist() == [0, 0, 1, 1]


def one(grid: np.ndarray, gt: list, scores: list, label: int = 0) -> MapBatch:
    return MapBatch(
        maps=grid[None],
        boxes=[np.array([gt], np.float64)],
        scores=np.array([scores], np.float64),
        labels=np.array([label]),
        grids=grid[None],
    )


def test_gt_known_is_iou_at_least_half_and_top1_strictly_above():
    """A 2x2 blob at rows/cols 0-1: box [0, 0, 2, 2], +1 area 9. GT [1, 0, 3, 2], +1
    area 9, overlap 2 x 3 = 6: IoU 6 / 12 = 0.5 exactly. TS-CAM counts GT-known at
    >= 0.5 and Top-1 / Top-5 Loc at > 0.5: 100, 0, 0 with the class right."""
    grid = np.zeros((8, 8), np.float32)
    grid[0:2, 0:2] = 1.0
    acc = TSCAMBoxAccuracy(0.1)
    acc.update(one(grid, [1, 0, 3, 2], [0.9, 0.1]))
    assert acc.compute() == {"gt_known_loc": 100.0, "top1_loc": 0.0, "top5_loc": 0.0}
    acc.update(one(grid, [0, 0, 2, 2], [0.1, 0.9]))  # IoU 1, class wrong (top-1 only)
    assert acc.compute() == {"gt_known_loc": 100.0, "top1_loc": 0.0, "top5_loc": 50.0}


def test_tscam_boxes_are_used_over_the_frames(monkeypatch):
    grid = np.zeros((8, 8), np.float32)
    grid[0:2, 0:2] = 1.0
    batch = one(grid, [5, 5, 7, 7], [1.0])
    batch.tscam_boxes = [np.array([[0.0, 0.0, 2.0, 2.0]])]
    acc = TSCAMBoxAccuracy(0.1)
    acc.update(batch)
    assert acc.compute()["gt_known_loc"] == 100.0


@pytest.mark.parametrize("thr", [0.1, 0.12])
def test_resize_is_cv2_bilinear_then_min_max(thr):
    """A 2x2 grid [[0, 1], [0, 0]] to 8x8 with cv2's bilinear (half-pixel centres): the
    top-right quarter is 1.0 and values fall off linearly; after min-max and uint8 the
    pixels above int(thr * 255) form one region whose box is worked out here from the
    bilinear weights: column c weight clip((c + 0.5) / 4 - 0.5, 0, 1) to the right."""
    grid = np.array([[0.0, 1.0], [0.0, 0.0]], np.float32)
    wx = np.clip((np.arange(8) + 0.5) / 4 - 0.5, 0, 1)
    wy = 1 - np.clip((np.arange(8) + 0.5) / 4 - 0.5, 0, 1)
    cam = np.outer(wy, wx).astype(np.float32)
    cam = ((cam - cam.min()) / (cam.max() - cam.min()) * 255.0).astype(np.uint8)
    ys, xs = np.nonzero(cam > int(thr * cam.max()))
    want = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    assert tscam_box(grid, thr, (8, 8)).tolist() == want
