"""TS-CAM's own box rule and its GT-known / Top-1 / Top-5 Loc (Gao et al., ICCV 2021;
vasgaowei/TS-CAM ``lib/cams_deit.py``: ``resize_cam``, ``get_bboxes``,
``evaluate_cls_loc``, ``cls_loc_err``), which its published localization numbers use:

- the grid map is resized to the frame with ``cv2.resize`` (bilinear), min-max scaled
  (no epsilon), times 255 to uint8 (truncated);
- ``cv2.threshold(map, int(thr * max), 255, THRESH_TOZERO)`` keeps the pixels above
  the cut; ``findContours`` (RETR_TREE) on them;
- the contour of largest ``cv2.contourArea`` (the polygon's area, not its pixel count)
  gives the box ``boundingRect``: ``[x, y, x + w, y + h]``; no contour: ``[0, 0, 1, 1]``;
- IoU with the +1 convention, best over the GT boxes (in TS-CAM's conversion, see
  ``data.imaging.tscam_boxes``);
- one fixed threshold (``MODEL.CAM_THR``), never picked on data;
- GT-known: IoU >= 0.5; Top-1 / Top-5 Loc: the label among the top 1 / 5 classes and
  IoU > 0.5 (strictly: ``cls_loc_err``'s ``max_iou > iou_th``).

A constant map (TS-CAM divides by zero there) is taken as all zero: no contour."""

from __future__ import annotations

import cv2
import numpy as np

from wsolbench.evaluation.boxes import box_iou
from wsolbench.evaluation.metrics import Accumulator, MapBatch


def tscam_box(grid: np.ndarray, threshold: float, size: tuple[int, int]) -> np.ndarray:
    """The box (x0, y0, x1, y1) of one grid map at ``threshold`` in a frame of
    ``size`` (H, W), by TS-CAM's rule."""
    cam = cv2.resize(np.asarray(grid, np.float32), (size[1], size[0]))
    lo, hi = cam.min(), cam.max()
    cam = (cam - lo) / (hi - lo) if hi > lo else np.zeros_like(cam)
    cam = (cam * 255.0).astype(np.uint8)
    _, kept = cv2.threshold(cam, int(threshold * np.max(cam)), 255, cv2.THRESH_TOZERO)
    contours, _ = cv2.findContours(kept, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return np.array([0, 0, 1, 1], np.float64)
    x, y, w, h = cv2.boundingRect(max(contours, key=cv2.contourArea))
    return np.array([x, y, x + w, y + h], np.float64)


class TSCAMBoxAccuracy(Accumulator):
    """GT-known / Top-1 / Top-5 Loc by TS-CAM's rule at its one ``threshold``. Reads
    the batch's grid maps and TS-CAM's GT boxes (the frame's boxes where the split
    gives none: the synthetic images, scored as drawn)."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.state = {name: np.zeros(()) for name in ("n", "gt_known", "top1", "top5")}

    def update(self, batch: MapBatch) -> None:
        c1, c5 = batch.correct
        size = batch.maps.shape[1:]
        gts = batch.tscam_boxes if batch.tscam_boxes is not None else batch.boxes
        for i, gt in enumerate(gts):
            box = tscam_box(batch.grids[i], self.threshold, size)
            iou = float(box_iou(box[None], np.asarray(gt, np.float64).reshape(-1, 4)).max())
            self.state["gt_known"] += iou >= 0.5
            self.state["top1"] += bool(c1[i]) and iou > 0.5
            self.state["top5"] += bool(c5[i]) and iou > 0.5
        self.state["n"] += len(batch)

    def compute(self) -> dict[str, float]:
        n = max(float(self.state["n"]), 1.0)
        return {
            "gt_known_loc": 100 * float(self.state["gt_known"]) / n,
            "top1_loc": 100 * float(self.state["top1"]) / n,
            "top5_loc": 100 * float(self.state["top5"]) / n,
        }
