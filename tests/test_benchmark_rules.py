"""The WSOL benchmark's MaxBoxAccV2 and PxAP (clovaai/wsolevaluation, evaluation.py with
``multi_contour_eval=True``, ``multi_iou_eval=True``, ``cam_curve_interval=0.01``) on
maps small enough to work out by hand from its definition; the SAT authors'
largest-component rule, which GT-known Loc keeps, on the same maps."""

import numpy as np
import pytest

from wsolbench.evaluation.boxes import BENCHMARK_THRESHOLDS, THRESHOLDS, box_iou
from wsolbench.evaluation.componenttree import best_contour_iou, largest_component_boxes
from wsolbench.evaluation.metrics import BoxAccuracy, MapBatch, MaxBoxAccV2, PixelAP


def maxboxacc(m: np.ndarray, gt: list) -> dict:
    acc = MaxBoxAccV2()
    acc.update(MapBatch.one(m, gt))
    return acc.compute()


def all_levels(value: float) -> dict:
    keys = ("maxboxacc_iou30", "maxboxacc_iou50", "maxboxacc_iou70", "maxboxaccv2")
    return dict.fromkeys(keys, pytest.approx(value))


def gt_known_curve(m: np.ndarray, gt: list) -> np.ndarray:
    acc = BoxAccuracy()
    acc.update(MapBatch.one(m, gt))
    return acc.compute()["gt_known"]


def test_issue_case_every_contour_counts():
    # A small blob that fits the GT exactly beside a larger, brighter one. Below
    # t = 0.5 (int(t * 255) < 127) both are contours and the small one's box
    # (x, y, x + w, y + h) = (1, 1, 3, 3) is the GT: IoU 1 at every level.
    m = np.zeros((8, 8))
    m[1:3, 1:3] = 0.5
    m[4:8, 4:8] = 1.0
    assert maxboxacc(m, [[1, 1, 3, 3]]) == all_levels(100.0)
    # The authors' rule boxes the largest component only, (4, 4, 8, 8): IoU 0.
    assert gt_known_curve(m, [[1, 1, 3, 3]]).max() == 0.0


def test_hole_borders_are_contours_too():
    # A filled square (1..8) with a 2x2 hole at rows/cols 4..5. RETR_TREE gives the
    # outer border, box (1, 1, 9, 9), and the hole's border, traced on the object
    # pixels around the hole (rows/cols 3..6): box (3, 3, 7, 7) = the GT. Outer box
    # alone: IoU 25 / 81 = 0.31, which counts at IoU 30 only.
    m = np.zeros((10, 10))
    m[1:9, 1:9] = 1.0
    m[4:6, 4:6] = 0.0
    assert maxboxacc(m, [[3, 3, 7, 7]]) == all_levels(100.0)
    assert box_iou(np.array([[1, 1, 9, 9]]), np.array([[3, 3, 7, 7]]))[0, 0] == 25 / 81
    assert gt_known_curve(m, [[3, 3, 7, 7]]).max() == 0.0


def test_contour_touching_the_border_is_clipped_to_w_minus_1():
    # A blob over rows 2..5 and cols 3..6 of a 6x7 map: rect (3, 2, 4, 4) ->
    # (3, 2, 7, 6) -> clipped to (3, 2, 6, 5). GT (3, 2, 6, 5): IoU 1. Unclipped, the
    # box would be 5x5 against 4x4: IoU 16 / 25 = 0.64 < 0.7.
    m = np.zeros((6, 7))
    m[2:6, 3:7] = 1.0
    assert maxboxacc(m, [[3, 2, 6, 5]]) == all_levels(100.0)


def test_equal_area_contours_both_count():
    # Two equal 2x2 blobs: a largest-contour rule keeps one of them; every contour
    # counts here, so a GT on either one is found exactly.
    m = np.zeros((8, 8))
    m[1:3, 1:3] = 1.0
    m[5:7, 5:7] = 1.0
    for gt in ([1, 1, 3, 3], [5, 5, 7, 7]):
        assert maxboxacc(m, [gt]) == all_levels(100.0)


def test_constant_map_is_one_whole_frame_contour():
    # 0.3 everywhere: uint8 76, and int(t * 76) < 76 for every t < 1, so every pixel
    # is foreground at every threshold: one contour, the frame clipped to (4, 3).
    m = np.full((4, 5), 0.3)
    assert maxboxacc(m, [[0, 0, 4, 3]]) == all_levels(100.0)
    # All zeros: nothing above int(t * 0) = 0, no contour, box (0, 0, 0, 0): IoU 1/4.
    assert maxboxacc(np.zeros((4, 5)), [[0, 0, 1, 1]]) == all_levels(0.0)


def test_single_pixel_and_binary_maps():
    m = np.zeros((6, 6))
    m[2, 3] = 1.0  # rect (3, 2, 1, 1) -> (3, 2, 4, 3): 2x2 under the +1 convention
    assert maxboxacc(m, [[3, 2, 4, 3]]) == all_levels(100.0)
    assert largest_component_boxes(m, np.array([0.5])).tolist() == [[3, 2, 4, 3]]
    # Against a 1-pixel GT (3, 2, 3, 2): IoU 1/4 at every threshold.
    assert maxboxacc(m, [[3, 2, 3, 2]]) == all_levels(0.0)


def test_several_gt_boxes_best_pair_counts():
    # Contours (1,1,3,3) and (5,5,7,7); GT boxes far from the first and exact on the
    # second: the best pair over contours x GT boxes counts.
    m = np.zeros((8, 8))
    m[1:3, 1:3] = 1.0
    m[5:7, 5:7] = 0.6
    assert maxboxacc(m, [[0, 5, 1, 7], [5, 5, 7, 7]]) == all_levels(100.0)


def test_unrounded_thresholds_move_the_cut():
    # np.arange(0, 1, 0.01)[70] is 0.7000000000000001, so with a uint8 maximum of 90
    # the cut is int(63.000000000000007) = 63 and a blob of exactly 63 is NOT above
    # it; with a rounded 0.70 the cut would be int(62.99999999999999) = 62.
    assert BENCHMARK_THRESHOLDS[70] != THRESHOLDS[70]
    m = np.zeros((8, 8))
    m[0:2, 0:2] = 90.5 / 255  # uint8 90
    m[4:8, 4:8] = 63.5 / 255  # uint8 63
    best = best_contour_iou(m, np.array([[4, 4, 7, 7]]), BENCHMARK_THRESHOLDS)
    assert best[69] == 1.0  # int(0.69 * 90) = 62: the 63 blob is a contour
    assert best[70] == 0.0  # gone at 0.7000000000000001


def test_pxap_issue_case_keeps_the_first_step():
    # 1.0 on a 2x2 object, 0.5 elsewhere. A score of exactly 1.0 has its own bin
    # [1, 2); from the empty [2, 3] bin (recall 0) to the cut at 1.0, precision 1
    # and recall 1: PxAP = 1 * (1 - 0) = 100. pIoU: 4 / 4 at the cut 1.0.
    m = np.full((4, 4), 0.5)
    m[1:3, 1:3] = 1.0
    px = PixelAP()
    px.update(MapBatch.one(m, mask=m == 1.0))
    assert px.compute() == {"pxap": pytest.approx(100.0), "piou": pytest.approx(100.0)}


def test_pxap_bins_use_unrounded_edges():
    # Object 0.9 and 0.7, background 0.695. The edge after 0.69 is
    # 0.7000000000000001, so 0.7 shares the bin [0.69, 0.70...) with the background
    # pixel: cuts give (tp, fp) = (1, 0) then (2, 1). PxAP = 1 * 1/2 + 2/3 * 1/2.
    # (With a rounded edge of 0.70 it would be 100.) pIoU = max(1/2, 2/3).
    m = np.array([[0.9, 0.7], [0.695, 0.0]])
    mask = np.array([[True, True], [False, False]])
    ignore = np.array([[False, False], [False, True]])  # the 0.0 pixel counts for neither
    px = PixelAP()
    px.update(MapBatch.one(m, mask=mask, ignore=ignore))
    assert px.compute() == {
        "pxap": pytest.approx(100 * (0.5 + 1 / 3)),
        "piou": pytest.approx(200 / 3),
    }


def test_gt_known_still_uses_the_largest_component():
    # Same map as the issue case, GT on the large blob: the authors' box (4, 4, 8, 8)
    # against GT (4, 4, 7, 7): IoU 16 / 25 = 0.64 at every threshold up to 0.99.
    m = np.zeros((8, 8))
    m[1:3, 1:3] = 0.5
    m[4:8, 4:8] = 1.0
    curve = gt_known_curve(m, [[4, 4, 7, 7]])
    assert (curve == 100.0).all()
