"""Run a model over a split and feed every metric accumulator with its maps."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from wsolbench.core.progress import Phase
from wsolbench.data.splits import Splits
from wsolbench.evaluation.boxes import THRESHOLDS, box_area, normalize_benchmark
from wsolbench.evaluation.metrics import MapBatch
from wsolbench.evaluation.perimage import PerImage
from wsolbench.evaluation.pool import MapScorer
from wsolbench.evaluation.scores import SplitScores, TrivialBoxes
from wsolbench.models.method import Method
from wsolbench.models.trunk import ModelOutput, minmax


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
    phase = Phase(loader, desc)
    for batch in phase:
        phase.count(len(batch["label"]))
        labels = batch["label"].to(device)
        out = method.forward_labelled(model, batch["image"].to(device), labels)
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
    workers: int = 0,
) -> SplitScores:
    """Feed every accumulator, the maps scored by ``workers`` processes (0: inline)
    while the model computes the next batch; ``keep`` collects per-image results."""
    scorer = MapScorer(scores, workers)
    for batch, cls_scores, maps, grids in predict(method, model, loader, device, splits, desc):
        masks = batch["mask"].numpy() if "mask" in batch else None
        gts = [gt.numpy() for gt in batch["boxes"]]
        then = None
        if keep is not None:
            then = _keeper(keep, batch["index"], cls_scores.argmax(axis=1), grids, gts, splits)
        tscam = [gt.numpy() for gt in batch["tscam_boxes"]] if "tscam_boxes" in batch else None
        mb = MapBatch(maps, gts, masks, cls_scores, batch["label"].numpy(), grids, tscam)
        scorer.add(mb, then)
    return scorer.close()


def _keeper(keep: PerImage, index, pred, grids, gts, splits: Splits):
    """A batch's per-image record, written once its values are known."""
    h, w = splits.image_size

    def then(values: dict) -> None:
        for i in range(len(gts)):
            area = box_area(gts[i]).max(initial=0) / (h * w)
            row = {name: v[i] for name, v in values.items()}
            keep.add(int(index[i]), int(pred[i]), row, grids[i], float(area))

    return then


def summarize(val: SplitScores | None, test: SplitScores, threshold_on: str) -> dict:
    """Pick the box threshold on ``threshold_on`` (GT-known Loc, ties to the lowest)
    and report every test metric; MaxBoxAccV2 and PxAP are threshold-free. Metrics a
    split cannot give (no boxes, no masks, no class scores, no split to pick the
    threshold on) are left out."""
    metrics: dict[str, float] = {}
    if test.cls is not None:
        metrics.update(test.cls.compute())
    out: dict = {"metrics": metrics, "threshold": None, "curve": None}
    if test.box is not None:
        metrics.update(test.maxbox.compute())
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
