"""A split's scores into the record's metrics: the box threshold picked on one split,
every test metric reported. Free of torch and model code, so ``evaluate-maps`` and
scoring workers import it light."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from wsolbench.evaluation.boxes import THRESHOLDS
from wsolbench.evaluation.scores import SplitScores, TrivialBoxes

if TYPE_CHECKING:
    from wsolbench.data.splits import Splits


def summarize(val: SplitScores | None, test: SplitScores, threshold_on: str) -> dict:
    """Pick the box threshold on ``threshold_on`` (GT-known Loc, ties to the lowest)
    and report every test metric; MaxBoxAccV2 and PxAP are threshold-free. Metrics a
    split cannot give (no boxes, no masks, no class scores, no split to pick the
    threshold on) are left out."""
    metrics: dict[str, float] = {}
    if test.cls is not None:
        metrics.update(test.cls.compute())
    out: dict = {"metrics": metrics, "threshold": None, "curve": None}
    if test.maxbox is not None:
        metrics.update(test.maxbox.compute())
    if test.box is not None:
        test_curves = test.box.compute()
        out["curve"] = {
            "thresholds": THRESHOLDS.tolist(),
            "test_gt_known": np.round(test_curves["gt_known"], 4).tolist(),
        }
        pick = val if threshold_on == "val" else test
        if pick is not None:
            metrics.update(_at_threshold(pick, test_curves, test.cls is not None, out))
            out["threshold"]["picked_on"] = threshold_on
        if val is not None:
            out["curve"]["val_gt_known"] = np.round(val.box.compute()["gt_known"], 4).tolist()
    if test.pixel is not None:
        test.pixel.require_object_pixels()
        metrics.update(test.pixel.compute())
    if test.polarity is not None:
        metrics.update(test.polarity.compute())
    if test.trivial is not None:
        metrics.update(test.trivial.compute())
    if test.tscam is not None:
        # TS-CAM's rule gives the headline Loc metrics; the SAT rule's stay, renamed.
        for key in ("gt_known_loc", "top1_loc", "top5_loc"):
            if key in metrics:
                metrics[f"sat_{key}"] = metrics.pop(key)
        metrics.update(test.tscam.compute())
        if test.cls is None:
            for key in ("top1_loc", "top5_loc"):
                metrics.pop(key)
    return out


def _at_threshold(pick: SplitScores, test_curves: dict, classified: bool, out: dict) -> dict:
    """The authors' metrics on test at the threshold best on ``pick``."""
    k = int(np.argmax(pick.box.compute()["gt_known"]))
    out["threshold"] = {"box": float(THRESHOLDS[k])}
    keys = ["gt_known", "iou30", "iou70"] + (["top1_loc", "top5_loc"] if classified else [])
    return {f"{key}_loc" if key == "gt_known" else key: float(test_curves[key][k]) for key in keys}


def trivial_boxes(splits: Splits) -> TrivialBoxes | None:
    if not splits.test.has_boxes:
        return None
    w, h = splits.box_source().box_sizes().float().mean(dim=0).tolist()
    return TrivialBoxes(splits.image_size, (w, h))
