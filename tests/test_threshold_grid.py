"""The WSOL benchmark's threshold grid at any ``cam_curve_interval``: its
``np.arange(0, 1, interval)`` unrounded, the uint8 cut ``int(t * max)`` for boxes and
the histogram edges for PxAP. Expected values: a hand-built map whose object only a
fine grid can isolate, cv2 run per threshold (the benchmark's procedure), and the
benchmark's PxAP written out here from its published rule."""

import json

import numpy as np
import pytest
from test_component_tree import oracle_contour_boxes
from test_library import folder  # noqa: F401  (the fixture: metadata and two maps)

from wsolbench.evaluation.boxes import box_iou
from wsolbench.evaluation.componenttree import best_contour_iou
from wsolbench.metrics import MaxBoxAccV2, PxAP, evaluate_folder


def fine_only_map() -> tuple[np.ndarray, np.ndarray]:
    """A 40x40 map: background 0.495 (uint8 126), a 10x10 object at 0.5 (uint8 127) with
    one pixel of 1.0 (255, so the map's max is 255). Only a cut at 126, i.e. a threshold
    in [126/255, 127/255) = [0.4941, 0.4980), keeps the object alone: 0.495 on the
    0.001 grid; the 0.01 grid jumps from 0.49 (cut 124: the whole image) to 0.50 (cut
    127: the one bright pixel)."""
    m = np.full((40, 40), 0.495)
    m[10:20, 10:20] = 0.5
    m[15, 15] = 1.0
    return m, np.array([[10.0, 10.0, 19.0, 19.0]])


def test_the_fine_grid_finds_a_box_the_coarse_one_cannot():
    m, gt = fine_only_map()
    coarse, fine = MaxBoxAccV2(0.01), MaxBoxAccV2(0.001)
    coarse.update(m[None], [gt])
    fine.update(m[None], [gt])
    assert coarse.compute()["maxboxacc_iou50"] == 0.0  # whole image: IoU 100/1600
    assert fine.compute() == {
        "maxboxacc_iou30": 100.0, "maxboxacc_iou50": 100.0, "maxboxacc_iou70": 100.0,
        "maxboxaccv2": 100.0,
    }  # fmt: skip
    # The thresholds are np.arange's, unrounded: 0.495 is the 495th of 1000. Its box is
    # the benchmark's boundingRect x + w: 10..20 each way, 121 pixels to the GT's 100.
    grid = np.arange(0, 1, 0.001)
    assert len(grid) == 1000 and best_contour_iou(m, gt, grid)[495] == 100 / 121


def smooth_maps(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:48, 0:48]
    out = []
    for _ in range(n):
        m = np.zeros((48, 48))
        for _ in range(3):
            cy, cx, s = rng.uniform(5, 43), rng.uniform(5, 43), rng.uniform(3, 10)
            m += rng.uniform(0.3, 1) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
        m += rng.random((48, 48)) * 0.05
        out.append((m - m.min()) / (m.max() - m.min()))
    return out


@pytest.mark.parametrize("interval", [0.01, 0.001])
def test_every_threshold_equals_cv2_per_threshold(interval):
    """Best IoU at each of the 100 / 1000 thresholds, the one-pass rule against cv2 run
    at every one of them, on maps with many distinct levels."""
    grid = np.arange(0, 1, interval)
    rng = np.random.default_rng(7)
    for m in smooth_maps(4, 1):
        gt = np.array([[*rng.integers(0, 20, 2), *rng.integers(24, 48, 2)]], np.float64)
        per_threshold, _ = oracle_contour_boxes(m, grid)
        want = np.array([box_iou(boxes.astype(np.float64), gt).max() for boxes in per_threshold])
        assert np.array_equal(best_contour_iou(m, gt, grid), want)


def benchmark_pxap(maps, masks, interval: float) -> float:
    """The benchmark's MaskEvaluator, from its rule: histograms over right edges
    np.arange(0, 1, interval) + [1, 2, 3], counts accumulated from the top bin, AP as
    sum(precision[1:] * diff(recall)) in percent."""
    edges = np.append(np.arange(0, 1, interval), [1.0, 2.0, 3.0])
    fg = sum(np.histogram(m[k], bins=edges)[0] for m, k in zip(maps, masks, strict=True))
    bg = sum(np.histogram(m[~k], bins=edges)[0] for m, k in zip(maps, masks, strict=True))
    tp, fp = fg[::-1].cumsum(), bg[::-1].cumsum()
    with np.errstate(invalid="ignore", divide="ignore"):
        precision, recall = tp / (tp + fp), tp / fg.sum()
    return float((precision[1:] * np.diff(recall)).sum() * 100)


@pytest.mark.parametrize("interval", [0.01, 0.001])
def test_pxap_equals_the_benchmarks_rule_at_either_interval(interval):
    maps = smooth_maps(5, 2)
    masks = [m > np.quantile(m, 0.8) for m in maps[::-1]]  # imperfect on purpose
    ours = PxAP(interval)
    ours.update(np.stack(maps), np.stack(masks))
    assert ours.compute()["pxap"] == pytest.approx(benchmark_pxap(maps, masks, interval), abs=1e-9)


def test_evaluate_maps_takes_the_interval_into_its_id_and_protocol(cli, tmp_path, folder):  # noqa: F811
    meta, maps = folder
    ids = {}
    for interval in ("0.01", "0.001"):
        rc, out, err = cli("evaluate-maps", str(maps), "--metadata", str(meta), "--name", "x",
                           "--cam-curve-interval", interval)  # fmt: skip
        assert rc == 0, err
        ids[interval] = out.strip().splitlines()[-1].split("/")[-1]
    assert ids["0.01"] != ids["0.001"]
    coarse = json.loads((tmp_path / "results" / ids["0.01"] / "record.json").read_text())
    fine = json.loads((tmp_path / "results" / ids["0.001"] / "record.json").read_text())
    assert "cam_curve_interval" not in coarse["protocol"]  # the default: ids of before hold
    assert fine["protocol"]["cam_curve_interval"] == 0.001
    library = evaluate_folder(maps, meta, cam_curve_interval=0.001)
    assert library == {k: fine["metrics"][k] for k in library}
    for bad in ("0", "1e-9"):  # 1e-9: a billion thresholds, a typo that would not fit
        rc, _, err = cli("evaluate-maps", str(maps), "--metadata", str(meta), "--name", "x",
                         "--cam-curve-interval", bad)  # fmt: skip
        assert rc == 2 and "cam_curve_interval" in err and err.count("\n") == 1
