"""Run a model over a split and feed every metric accumulator, one image at a time."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..method import Method
from ..models.trunk import minmax
from .boxes import THRESHOLDS, box_iou, normalize_benchmark
from .metrics import Accumulator, BoxAccuracy, Classification, MaxBoxAccV2, PixelAP


class TrivialBoxes(Accumulator):
    """GT-known Loc of fixed boxes that ignore the image: the whole frame, and a
    centred box of the mean training box size. A method must beat both."""

    def __init__(self, image_size: tuple[int, int], mean_wh: tuple[float, float]) -> None:
        h, w = image_size
        bw, bh = mean_wh
        x0, y0 = (w - bw) / 2, (h - bh) / 2
        self.boxes = np.array([[0, 0, w - 1, h - 1], [x0, y0, x0 + bw - 1, y0 + bh - 1]])
        self.state = {"n": np.zeros(()), "hits": np.zeros(2)}

    def update(self, gt: np.ndarray) -> None:
        self.state["n"] += 1
        self.state["hits"] += box_iou(self.boxes, gt).max(axis=1) >= 0.5

    def result(self) -> dict[str, float]:
        acc = 100 * self.state["hits"] / max(float(self.state["n"]), 1.0)
        return {"baseline_whole_image": float(acc[0]), "baseline_centred_box": float(acc[1])}


@dataclass
class SplitScores:
    cls: Classification = field(default_factory=Classification)
    box: BoxAccuracy = field(default_factory=BoxAccuracy)
    maxbox: MaxBoxAccV2 = field(default_factory=MaxBoxAccV2)
    pixel: PixelAP | None = None
    trivial: TrivialBoxes | None = None


def resize_maps(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(maps[:, None].float(), size=size, mode="bilinear", align_corners=False)[
        :, 0
    ]


@torch.no_grad()
def evaluate_split(
    method: Method,
    model: torch.nn.Module,
    loader: DataLoader,
    device: torch.device,
    image_size: tuple[int, int],
    scores: SplitScores,
    desc: str,
) -> SplitScores:
    model.eval()
    for batch in tqdm(loader, desc=desc, unit="batch", leave=False, dynamic_ncols=True):
        labels = batch["label"].to(device)
        out = model(batch["image"].to(device))
        maps = method.localization_maps(out, labels)
        # The SAT authors scale on the patch grid, then resize.
        authors = resize_maps(minmax(maps, eps=1e-5), image_size).cpu().numpy()
        raw = resize_maps(maps, image_size).cpu().numpy()
        c1, c5 = scores.cls.update(out.logits.float().cpu().numpy(), batch["label"].numpy())
        for i, gt in enumerate(batch["boxes"]):
            gt = gt.numpy()
            scores.box.update(authors[i], gt, bool(c1[i]), bool(c5[i]))
            map01 = normalize_benchmark(raw[i])
            scores.maxbox.update(map01, gt)
            if scores.pixel is not None:
                scores.pixel.update(map01, batch["mask"][i].numpy() > 0)
            if scores.trivial is not None:
                scores.trivial.update(gt)
    return scores


def summarize(val: SplitScores, test: SplitScores, threshold_on: str) -> dict:
    """Pick the box threshold on ``threshold_on`` (GT-known Loc, ties to the lowest)
    and report every test metric; MaxBoxAccV2 and PxAP are threshold-free."""
    test_curves = test.box.curves()
    pick_curves = val.box.curves() if threshold_on == "val" else test_curves
    k = int(np.argmax(pick_curves["gt_known"]))
    metrics = dict(test.cls.result())
    metrics.update(
        {
            "gt_known_loc": float(test_curves["gt_known"][k]),
            "top1_loc": float(test_curves["top1_loc"][k]),
            "top5_loc": float(test_curves["top5_loc"][k]),
            "iou30": float(test_curves["iou30"][k]),
            "iou70": float(test_curves["iou70"][k]),
        }
    )
    metrics.update(test.maxbox.result())
    if test.pixel is not None:
        metrics.update(test.pixel.result())
    if test.trivial is not None:
        metrics.update(test.trivial.result())
    return {
        "metrics": metrics,
        "threshold": {"box": float(THRESHOLDS[k]), "picked_on": threshold_on},
        "curve": {
            "thresholds": THRESHOLDS.tolist(),
            "test_gt_known": np.round(test_curves["gt_known"], 4).tolist(),
            "val_gt_known": np.round(val.box.curves()["gt_known"], 4).tolist(),
        },
    }
