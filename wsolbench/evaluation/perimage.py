"""Per-image test results kept in the run folder, so figures and intervals never
re-run a model: predicted class, best IoU per threshold (authors' rule, float16, for
figures), the patch-grid maps, and exactly what each image adds to every metric
(hit bits and pixel histograms), from which ``compare`` resamples images."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from wsolbench.core.errors import UserError
from wsolbench.core.store import atomic_write
from wsolbench.evaluation.boxes import THRESHOLDS

THRESHOLD_COUNT = len(THRESHOLDS)  # both rules' grids have 100 thresholds

MAX_MAPS = 10_000  # grid maps kept per run; larger splits keep an even sample


# per-image value -> (array kept, dtype): exact, so resampled metrics add up to the run's
KEPT = {
    "box": ("box_hit", bool),  # authors' rule: best IoU >= 0.5, per threshold
    "maxbox": ("maxbox_hits", bool),  # benchmark's rule: hit per IoU level and threshold
    "pixel": ("pixel_hist", np.uint32),  # object / background histogram of the map
}


class PerImage:
    def __init__(self, image_ids: list[str], labels: list[int], max_maps: int = MAX_MAPS) -> None:
        n = len(image_ids)
        self.image_ids, self.labels = image_ids, np.asarray(labels, np.int32)
        self.pred = np.full(n, -1, np.int32)
        self.gt_area = np.zeros(n, np.float32)  # largest GT box / frame area
        self.arrays: dict[str, np.ndarray] = {}  # iou and KEPT's, made on first use
        self.kept = np.unique(np.linspace(0, n - 1, min(n, max_maps)).round().astype(np.int64))
        self.slot = {int(i): k for k, i in enumerate(self.kept)}
        self.maps: np.ndarray | None = None

    def add(
        self, index: int, pred: int, values: dict[str, np.ndarray], grid: np.ndarray, area: float
    ) -> None:
        """One image: its predicted class, its values by accumulator (``box`` best IoU
        per threshold, ``maxbox`` hits, ``pixel`` histograms), grid map, GT area."""
        self.pred[index] = pred
        self.gt_area[index] = area
        rows = dict(values)
        if "box" in rows:
            rows["iou"] = rows["box"]
            rows["box"] = rows["box"] >= 0.5
        for name, row in rows.items():
            key, dtype = KEPT.get(name, (name, np.float16))
            if key not in self.arrays:
                self.arrays[key] = np.zeros((len(self.image_ids), *np.shape(row)), dtype)
            self.arrays[key][index] = row
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
        for key, array in self.arrays.items():
            # Bits packed along the last axis (thresholds): 100 per image in 13 bytes;
            # histograms in 16 bits where they fit (a 224 x 224 map has 50,176 pixels).
            if array.dtype == bool:
                array = np.packbits(array, axis=-1)
            elif array.dtype == np.uint32 and array.max(initial=0) <= np.iinfo(np.uint16).max:
                array = array.astype(np.uint16)
            arrays[key] = array
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
    """The arrays of a ``per_image.npz``, hit bits unpacked (100 thresholds)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise UserError(f"{path}: missing") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:  # truncated, foreign
        raise UserError(f"{path}: not a readable per-image file ({type(e).__name__})") from None
    for key in ("box_hit", "maxbox_hits"):
        if key in out:
            out[key] = np.unpackbits(out[key], axis=-1, count=THRESHOLD_COUNT).astype(bool)
    return out
