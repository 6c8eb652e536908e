"""Per-image test results kept in the run folder, so figures never re-run a model:
predicted class, best IoU per threshold (authors' rule) and the patch-grid maps."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from wsolbench.core.store import atomic_write

MAX_MAPS = 10_000  # grid maps kept per run; larger splits keep an even sample


class PerImage:
    def __init__(self, image_ids: list[str], labels: list[int], max_maps: int = MAX_MAPS) -> None:
        n = len(image_ids)
        self.image_ids, self.labels = image_ids, np.asarray(labels, np.int32)
        self.pred = np.full(n, -1, np.int32)
        self.gt_area = np.zeros(n, np.float32)  # largest GT box / frame area
        self.iou: np.ndarray | None = None
        self.kept = np.unique(np.linspace(0, n - 1, min(n, max_maps)).round().astype(np.int64))
        self.slot = {int(i): k for k, i in enumerate(self.kept)}
        self.maps: np.ndarray | None = None

    def add(
        self, index: int, pred: int, iou: np.ndarray | None, grid: np.ndarray, gt_area: float
    ) -> None:
        self.pred[index] = pred
        self.gt_area[index] = gt_area
        if iou is not None:
            if self.iou is None:
                self.iou = np.zeros((len(self.image_ids), len(iou)), np.float16)
            self.iou[index] = iou
        if index in self.slot:
            if self.maps is None:
                self.maps = np.zeros((len(self.kept), *grid.shape), np.float16)
            self.maps[self.slot[index]] = grid

    def save(self, path: Path) -> dict:
        """Write ``per_image.npz`` atomically; returns what the record says about it."""
        arrays = {
            "image_ids": np.asarray(self.image_ids, dtype=np.str_),
            "labels": self.labels,
            "pred": self.pred,
            "gt_area": self.gt_area,
            "map_index": self.kept,
            "maps": self.maps if self.maps is not None else np.zeros((0, 0, 0), np.float16),
        }
        if self.iou is not None:
            arrays["iou"] = self.iou
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        atomic_write(path, lambda f: f.write(buf.getvalue()))
        return {
            "file": path.name,
            "images": len(self.image_ids),
            "maps_kept": int(len(self.kept)),
            "maps_sampled": len(self.kept) < len(self.image_ids),
        }


def load(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
