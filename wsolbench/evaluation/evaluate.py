"""Run a model over a split and feed every metric accumulator with its maps."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from wsolbench.core.progress import Phase
from wsolbench.data.splits import Splits
from wsolbench.evaluation.boxes import box_area, normalize_benchmark
from wsolbench.evaluation.metrics import MapBatch
from wsolbench.evaluation.perimage import PerImage
from wsolbench.evaluation.pool import MapScorer
from wsolbench.evaluation.scores import SplitScores
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
