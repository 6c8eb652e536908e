"""Every metric against values worked out by hand on tiny maps and boxes."""

import numpy as np
import pytest

from wsolbench.evaluation.boxes import box_iou, normalize_authors, normalize_benchmark
from wsolbench.evaluation.componenttree import largest_component_boxes
from wsolbench.evaluation.metrics import BoxAccuracy, Classification, MapBatch, MaxBoxAccV2, PixelAP
from wsolbench.evaluation.reference import contour_boxes
from wsolbench.evaluation.scores import SplitScores, TrivialBoxes
from wsolbench.evaluation.summary import summarize


def two_blobs() -> np.ndarray:
    m = np.zeros((6, 8))
    m[1:3, 1:3] = 0.9  # blob A: 4 pixels, rows 1-2, cols 1-2
    m[3:6, 5:8] = 0.6  # blob B: 9 pixels, rows 3-5, cols 5-7, touching the bottom-right border
    return m


def test_iou_uses_plus_one_convention():
    iou = box_iou(
        np.array([[0, 0, 9, 9]]), np.array([[5, 5, 14, 14], [0, 0, 9, 9], [20, 20, 30, 30]])
    )
    np.testing.assert_allclose(iou, [[25 / 175, 1.0, 0.0]])


def test_authors_rule_largest_component_and_edges():
    boxes = largest_component_boxes(two_blobs(), np.array([0.5, 0.7, 0.95]))
    assert boxes.tolist() == [[5, 3, 8, 6], [1, 1, 3, 3], [0, 0, 8, 6]]  # none > 0.95: whole frame


def test_authors_rule_uses_8_connectivity():
    m = np.zeros((6, 8))
    m[0, 0] = m[1, 1] = m[2, 2] = 1.0  # a diagonal: one component of 3 with 8-neighbours
    m[5, 4:6] = 1.0  # two pixels side by side
    assert largest_component_boxes(m, np.array([0.5])).tolist() == [[0, 0, 3, 3]]


def test_benchmark_rule_boxes_every_contour_clipped_at_border():
    boxes = contour_boxes(two_blobs(), np.array([0.5, 0.7, 0.99]))
    # uint8 map: A 229, B 153. t=0.5 -> cut 114: both blobs; B's rect (5, 3, 8, 6) is
    # clipped to (W-1, H-1) = (7, 5). t=0.7 -> cut 160: only A; t=0.99 -> 226: only A.
    assert sorted(boxes[0].tolist()) == [[1, 1, 3, 3], [5, 3, 7, 5]]
    assert boxes[1].tolist() == [[1, 1, 3, 3]] and boxes[2].tolist() == [[1, 1, 3, 3]]


def test_empty_and_constant_maps():
    t = np.array([0.0, 0.5])
    for m in (np.zeros((4, 5)), np.full((4, 5), 0.3)):
        assert largest_component_boxes(normalize_authors(m), t).tolist() == [[0, 0, 5, 4]] * 2
        assert [b.tolist() for b in contour_boxes(normalize_benchmark(m), t)] == [
            [[0, 0, 0, 0]]
        ] * 2
    assert normalize_benchmark(np.array([[np.nan, 1.0]])).tolist() == [[0.0, 0.0]]


def test_box_accuracy_curves_with_two_gt_boxes():
    acc = BoxAccuracy(thresholds=np.array([0.5, 0.7]))
    m = two_blobs()
    # image 1: GT = blob B. t=0.5 -> box (5,3,8,6): IoU 9/16; t=0.7 -> blob A: IoU 0
    # Class scores: label 1 ranks second (top-5, not top-1), then first.
    second, first = np.array([0.9, 0.5, 0.1]), np.array([0.1, 0.9, 0.5])
    best = acc.update(MapBatch.one(m, [[5, 3, 7, 5]], scores=second, label=1))
    np.testing.assert_allclose(best, [[9 / 16, 0.0]])
    # image 2: two GT boxes; t=0.7 -> box (1,1,3,3) vs (1,1,2,2): IoU 4/9 (best of the two)
    best = acc.update(MapBatch.one(m, [[10, 10, 12, 12], [1, 1, 2, 2]], scores=first, label=1))
    np.testing.assert_allclose(best, [[0.0, 4 / 9]])
    c = acc.compute()
    np.testing.assert_allclose(c["gt_known"], [50, 0])
    np.testing.assert_allclose(c["top1_loc"], [0, 0])  # image 1 is localized but misclassified
    np.testing.assert_allclose(c["top5_loc"], [50, 0])
    np.testing.assert_allclose(c["iou30"], [50, 50])
    np.testing.assert_allclose(c["iou70"], [0, 0])


def test_maxboxacc_v2():
    acc = MaxBoxAccV2()
    m = two_blobs()
    # Image 1, GT = B's clipped box: B is a contour while int(t * 229) < 153 (t <= 0.66),
    # IoU 1 there. Image 2, GT (1,1,2,2): A's box (1,1,3,3) at every t, IoU 4/9 (>= 0.3
    # only). At t <= 0.66: IoU 30 both images, IoU 50 / 70 image 1 alone.
    acc.update(MapBatch([m, m], [np.array([[5, 3, 7, 5]]), np.array([[1, 1, 2, 2]])]))
    r = acc.compute()
    assert r["maxboxacc_iou30"] == pytest.approx(100.0)
    assert r["maxboxacc_iou50"] == pytest.approx(50.0)
    assert r["maxboxacc_iou70"] == pytest.approx(50.0)
    assert r["maxboxaccv2"] == pytest.approx(200 / 3)
    single = MaxBoxAccV2()
    single.update(MapBatch.one(m, [[5, 3, 7, 5]]))
    assert single.compute()["maxboxaccv2"] == pytest.approx(100.0)


def test_pxap_and_piou_by_hand():
    m = np.array([[0.9, 0.8], [0.7, 0.1]])
    mask = np.array([[True, False], [True, False]])
    px = PixelAP()
    px.update(MapBatch.one(m, mask=mask))
    # ranking fg, bg, fg, bg: AP = 1 * 0.5 + 2/3 * 0.5; pIoU peaks at t=0.7: 2 / (2 + 1)
    assert px.compute()["pxap"] == pytest.approx(100 * (0.5 + 1 / 3))
    assert px.compute()["piou"] == pytest.approx(100 * 2 / 3)
    ignored = PixelAP()
    ignored.update(MapBatch.one(m, mask=mask, ignore=np.array([[False, True], [False, False]])))
    assert ignored.compute() == pytest.approx({"pxap": 100.0, "piou": 100.0})


def test_accumulators_merge_like_one_pass():
    m = two_blobs()
    whole, a, b = PixelAP(), PixelAP(), PixelAP()
    mask = m > 0.7
    whole.update(MapBatch.one(m, mask=mask))
    whole.update(MapBatch.one(m.T.copy(), mask=mask.T.copy()))
    a.update(MapBatch.one(m, mask=mask))
    b.update(MapBatch.one(m.T.copy(), mask=mask.T.copy()))
    a.merge(b)
    assert a.compute() == whole.compute()


def test_classification_top1_top5():
    acc = Classification()
    logits = np.array([[9, 1, 2, 3, 4, 5, 6], [0, 1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1, 0]], float)
    batch = MapBatch(np.zeros((3, 2, 2)), [], scores=logits, labels=np.array([0, 1, 6]))
    assert acc.update(batch) is None
    c1, c5 = batch.correct
    assert c1.tolist() == [True, False, False]  # image 3's top class is 0
    assert c5.tolist() == [True, False, False]  # label 1 ranks 6th in image 2; 6 ranks 7th in 3
    assert acc.compute() == pytest.approx({"top1_cls": 100 / 3, "top5_cls": 100 / 3})


def test_threshold_picked_on_val_then_applied_to_test():
    val, test = SplitScores(), SplitScores()
    for s, best in ((val, 10), (test, 50)):
        s.box.state["n"] += 4
        s.box.state["iou"][1, best] = 4  # all four images hit at one threshold only
        s.box.state["iou"][1, 10] = max(s.box.state["iou"][1, 10], 1)
    on_val = summarize(val, test, "val")
    assert on_val["threshold"] == {"box": 0.10, "picked_on": "val"}
    assert on_val["metrics"]["gt_known_loc"] == pytest.approx(25.0)
    on_test = summarize(val, test, "test")
    assert on_test["threshold"] == {"box": 0.50, "picked_on": "test"}
    assert on_test["metrics"]["gt_known_loc"] == pytest.approx(100.0)


def test_trivial_boxes():
    t = TrivialBoxes((10, 10), mean_wh=(4.0, 4.0))  # centred box (3, 3, 6, 6)
    t.update(MapBatch(np.zeros((2, 10, 10)), [np.array([[3, 3, 6, 6]]), np.array([[0, 0, 9, 9]])]))
    assert t.compute() == {"baseline_whole_image": 50.0, "baseline_centred_box": 50.0}


def test_largest_component_boxes_match_whole_image_labelling_on_random_maps():
    """The one-pass boxes equal labelling the whole image at every threshold."""
    import cv2

    from wsolbench.evaluation.boxes import THRESHOLDS

    rng = np.random.default_rng(5)
    for _ in range(20):
        grid = rng.random((int(rng.integers(4, 15)),) * 2).astype(np.float32)
        m = cv2.resize(grid, (64, 64), interpolation=cv2.INTER_LINEAR)
        m = (m - m.min()) / (m.max() - m.min())
        got = largest_component_boxes(m, THRESHOLDS)
        for i, t in enumerate(THRESHOLDS):
            n, _, stats, _ = cv2.connectedComponentsWithStats(
                (m > t).astype(np.uint8), connectivity=8
            )
            if n == 1:
                assert got[i].tolist() == [0, 0, 64, 64]
                continue
            j = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
            x, y, w, h = stats[j, :4]
            assert got[i].tolist() == [x, y, x + w, y + h]


def test_every_accumulator_follows_one_protocol():
    # update(batch) / merge / compute / reset, the same for all six.
    import inspect

    from wsolbench.evaluation.metrics import Polarity

    m = two_blobs()
    mask = m > 0.7
    batch = MapBatch.one(m, [[5, 3, 7, 5]], mask=mask, scores=np.array([0.2, 0.8]), label=1)
    made = [
        Classification(),
        BoxAccuracy(),
        MaxBoxAccV2(),
        PixelAP(),
        Polarity(),
        TrivialBoxes(m.shape, (3.0, 3.0)),
    ]
    for acc in made:
        params = list(inspect.signature(type(acc).update).parameters)
        assert params == ["self", "batch"], type(acc).__name__
        empty = acc.empty_copy()
        acc.update(batch)
        assert any(np.any(v) for v in acc.state.values()), type(acc).__name__  # it counted
        twice = acc.empty_copy()
        twice.update(batch)
        twice.merge(acc)
        assert all(np.array_equal(twice.state[k], 2 * v) for k, v in acc.state.items())
        acc.reset()
        assert _values(acc.compute()) == _values(empty.compute()), type(acc).__name__


def _values(d: dict) -> dict:
    return {k: np.asarray(v).tolist() for k, v in d.items()}
