"""Run a model over a split and feed every metric accumulator, one image at a time."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..data import Splits, WSOLSplit
from ..imagefiles import IGNORE
from ..method import Method
from ..models.trunk import ModelOutput, minmax
from .boxes import THRESHOLDS, box_area, box_iou, normalize_benchmark
from .metrics import (
    Accumulator,
    BoxAccuracy,
    Classification,
    MaxBoxAccV2,
    PixelAP,
    Polarity,
)
from .perimage import PerImage


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
    """The accumulators one split feeds; None where the split lacks what they need."""

    cls: Classification | None = field(default_factory=Classification)
    box: BoxAccuracy | None = field(default_factory=BoxAccuracy)
    maxbox: MaxBoxAccV2 | None = field(default_factory=MaxBoxAccV2)
    pixel: PixelAP | None = None
    polarity: Polarity | None = None
    trivial: TrivialBoxes | None = None

    @classmethod
    def for_split(
        cls,
        split: WSOLSplit,
        pixel: bool,
        trivial: TrivialBoxes | None = None,
        classify: bool = True,
    ) -> SplitScores:
        boxes = split.has_boxes
        return cls(
            cls=Classification() if classify else None,
            box=BoxAccuracy() if boxes else None,
            maxbox=MaxBoxAccV2() if boxes else None,
            pixel=PixelAP() if pixel and split.has_masks else None,
            polarity=Polarity() if pixel and split.has_masks else None,
            trivial=trivial if boxes else None,
        )

    def add_image(
        self, m: np.ndarray, gt: np.ndarray, mask: np.ndarray | None, c1: bool, c5: bool
    ) -> np.ndarray | None:
        """Score one map in [0, 1] on the evaluation frame (the exchange map, see
        frame_maps). The benchmark's metrics take it as given, as its evaluator does;
        the authors' rule min-max scales it first. Returns the best IoU per threshold
        under the authors' rule (None: no boxes)."""
        iou = self.box.update(m, gt, c1, c5) if self.box is not None else None
        if self.maxbox is not None:
            self.maxbox.update(m, gt)
        if self.pixel is not None:
            self.pixel.update(m, mask == 1, mask == IGNORE)
        if self.polarity is not None:
            self.polarity.update(m, mask == 1, mask == IGNORE)
        if self.trivial is not None:
            self.trivial.update(gt)
        return iou


def resize_maps(maps: torch.Tensor, size: tuple[int, int], mode: str = "bilinear") -> torch.Tensor:
    return F.interpolate(maps[:, None].float(), size=size, mode=mode, align_corners=False)[:, 0]


def grid_maps(method: Method, out: ModelOutput, labels: torch.Tensor) -> torch.Tensor:
    """(B, h, w) maps min-max scaled on the patch grid (the SAT authors' eps)."""
    return minmax(method.localization_maps(out, labels), eps=1e-5)


def frame_maps(grid: torch.Tensor, size: tuple[int, int], mode: str = "bilinear") -> np.ndarray:
    """(B, H, W) float32 maps on the evaluation frame: grid maps resized (``mode``:
    bilinear as the SAT authors, bicubic as the benchmark's inference), then min-max
    scaled to [0, 1] per map as the benchmark's inference does. These are what gets
    scored and what ``export-maps`` writes, so exported maps score exactly the same
    here and in the benchmark's own evaluator."""
    frames = resize_maps(grid, size, mode).cpu().numpy()
    return np.stack([normalize_benchmark(f) for f in frames]) if len(frames) else frames


@torch.no_grad()
def predict(
    method: Method,
    model: torch.nn.Module,
    loader: DataLoader,
    device: torch.device,
    splits: Splits,
    desc: str,
) -> Iterator[tuple[dict, np.ndarray, np.ndarray, np.ndarray]]:
    """Per batch: the batch, class scores (ten-crop softmax mean when the batch has
    ``crops``), frame maps and grid maps."""
    model.eval()
    for batch in tqdm(loader, desc=desc, unit="batch", leave=False, dynamic_ncols=True):
        labels = batch["label"].to(device)
        out = model(batch["image"].to(device))
        scores = out.logits.float()
        if "crops" in batch:
            crops = batch["crops"]
            logits = model(crops.flatten(0, 1).to(device)).logits.float()
            scores = logits.softmax(-1).view(crops.shape[0], crops.shape[1], -1).mean(1)
        grid = grid_maps(method, out, labels)
        maps = frame_maps(grid, splits.image_size, splits.map_mode)
        yield batch, scores.cpu().numpy(), maps, grid.float().cpu().numpy()


def evaluate_split(
    method: Method,
    model: torch.nn.Module,
    loader: DataLoader,
    device: torch.device,
    splits: Splits,
    scores: SplitScores,
    desc: str,
    keep: PerImage | None = None,
) -> SplitScores:
    """Feed every accumulator; ``keep`` collects per-image results for figures."""
    image_size = splits.image_size
    for batch, cls_scores, maps, grids in predict(method, model, loader, device, splits, desc):
        c1, c5 = scores.cls.update(cls_scores, batch["label"].numpy())
        masks = batch["mask"].numpy() if "mask" in batch else [None] * len(maps)
        pred = cls_scores.argmax(axis=1)
        for i, gt in enumerate(batch["boxes"]):
            iou = scores.add_image(maps[i], gt.numpy(), masks[i], bool(c1[i]), bool(c5[i]))
            if keep is not None:
                area = box_area(gt.numpy()).max(initial=0) / (image_size[0] * image_size[1])
                keep.add(int(batch["index"][i]), int(pred[i]), iou, grids[i], float(area))
    return scores


def summarize(val: SplitScores | None, test: SplitScores, threshold_on: str) -> dict:
    """Pick the box threshold on ``threshold_on`` (GT-known Loc, ties to the lowest)
    and report every test metric; MaxBoxAccV2 and PxAP are threshold-free. Metrics a
    split cannot give (no boxes, no masks, no class scores, no split to pick the
    threshold on) are left out."""
    metrics: dict[str, float] = {}
    if test.cls is not None:
        metrics.update(test.cls.result())
    out: dict = {"metrics": metrics, "threshold": None, "curve": None}
    if test.box is not None:
        metrics.update(test.maxbox.result())
        test_curves = test.box.curves()
        out["curve"] = {
            "thresholds": THRESHOLDS.tolist(),
            "test_gt_known": np.round(test_curves["gt_known"], 4).tolist(),
        }
        pick = val if threshold_on == "val" else test
        if pick is not None:
            metrics.update(_at_threshold(pick, test_curves, test.cls is not None, out))
            out["threshold"]["picked_on"] = threshold_on
        if val is not None:
            out["curve"]["val_gt_known"] = np.round(val.box.curves()["gt_known"], 4).tolist()
    if test.pixel is not None:
        metrics.update(test.pixel.result())
    if test.polarity is not None:
        metrics.update(test.polarity.result())
    if test.trivial is not None:
        metrics.update(test.trivial.result())
    return out


def _at_threshold(pick: SplitScores, test_curves: dict, classified: bool, out: dict) -> dict:
    """The authors' metrics on test at the threshold best on ``pick``."""
    k = int(np.argmax(pick.box.curves()["gt_known"]))
    out["threshold"] = {"box": float(THRESHOLDS[k])}
    keys = ["gt_known", "iou30", "iou70"] + (["top1_loc", "top5_loc"] if classified else [])
    return {f"{key}_loc" if key == "gt_known" else key: float(test_curves[key][k]) for key in keys}
